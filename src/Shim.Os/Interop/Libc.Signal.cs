using System.Runtime.InteropServices;

namespace Shim.Os.Interop;

/// <summary>Signal masks and signalfd(2).</summary>
internal static unsafe partial class Libc
{
    [LibraryImport("libc")]
    internal static partial int sigaddset(void* sigset, int signal);

    [LibraryImport("libc")]
    internal static partial int sigismember(void* sigset, int signal);

    /// <summary>Returns the error number instead of setting errno.</summary>
    [LibraryImport("libc")]
    internal static partial int pthread_sigmask(int how, void* set, void* oldSet);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int signalfd(int fd, void* mask, int flags);
}
