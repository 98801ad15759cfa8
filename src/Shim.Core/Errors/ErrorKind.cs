using System.Diagnostics.CodeAnalysis;

namespace Shim.Core.Errors;

/// <summary>containerd's error classes (errdefs); the task service maps each to one ttrpc status.</summary>
public enum ErrorKind
{
    /// <summary>Anything without a class (gRPC Unknown).</summary>
    Unknown,
    /// <summary>The request itself is wrong.</summary>
    InvalidArgument,
    /// <summary>No such container or process.</summary>
    NotFound,
    /// <summary>The id is taken.</summary>
    AlreadyExists,
    /// <summary>The object is in the wrong state for the operation.</summary>
    FailedPrecondition,
    /// <summary>Temporarily unable.</summary>
    Unavailable,
    /// <summary>Not supported by this shim.</summary>
    NotImplemented,
    /// <summary>A bug or broken invariant in the shim.</summary>
    Internal,
}

/// <summary>A failure with an error class and a message saying what was attempted on what.</summary>
[SuppressMessage("Design", "CA1032:Implement standard exception constructors", Justification = "every ShimException carries an ErrorKind; a constructor without one would make one that maps to no status")]
public sealed class ShimException(ErrorKind kind, string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>The error class containerd will see.</summary>
    public ErrorKind Kind { get; } = kind;
}
