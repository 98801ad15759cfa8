using System.Diagnostics.CodeAnalysis;

namespace Shim.Os.Mounting;

/// <summary>A rootfs mount failed; the message names the mount and, where one is to blame, the option.</summary>
[SuppressMessage("Design", "CA1032:Implement standard exception constructors", Justification = "every MountException names the mount that failed")]
public sealed class MountException : Exception
{
    /// <summary>Creates the exception; <paramref name="badInput"/> marks a request that can never succeed.</summary>
    public MountException(string message, bool badInput, Exception? inner = null)
        : base(message, inner) => BadInput = badInput;

    /// <summary>True when the request itself is wrong (bad option, mapping or target), false when the system refused it.</summary>
    public bool BadInput { get; }
}
