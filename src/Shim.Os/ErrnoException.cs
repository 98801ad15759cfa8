using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using Shim.Os.Interop;

namespace Shim.Os;

/// <summary>A libc call failed; carries the errno and what was attempted.</summary>
[SuppressMessage("Design", "CA1032:Implement standard exception constructors", Justification = "every ErrnoException carries the errno callers switch on")]
public sealed class ErrnoException : Exception
{
    /// <summary>Creates an exception for <paramref name="errno"/> raised by <paramref name="operation"/>.</summary>
    public ErrnoException(int errno, string operation)
        : base($"{operation}: {Describe(errno)}")
    {
        Errno = errno;
        Operation = operation;
    }

    /// <summary>The errno value.</summary>
    public int Errno { get; }

    /// <summary>What was attempted, e.g. "open /run/x".</summary>
    public string Operation { get; }

    /// <summary>Why it failed, in words and by name: "No such file or directory (ENOENT)".</summary>
    public string Reason => Describe(Errno);

    /// <summary>strerror's text and the errno's name: "No such file or directory (ENOENT)".</summary>
    public static string Describe(int errno) => $"{Marshal.GetPInvokeErrorMessage(errno)} ({Interop.Errno.Name(errno)})";

    /// <summary>Builds the exception from the errno left by the last libc call on this thread.</summary>
    public static ErrnoException FromLast(string operation) => new(Interop.Errno.Last, operation);
}
