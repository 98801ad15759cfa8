using System.Runtime.InteropServices;

namespace Shim.Os.Interop;

/// <summary>File descriptors: open, fcntl, pipes, read/write, splice, eventfd, stat.</summary>
internal static unsafe partial class Libc
{
    [LibraryImport("libc", SetLastError = true)]
    internal static partial int open(byte* path, int flags, int mode);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int close(int fd);

    // fcntl is variadic; the optional argument travels in an integer register on x64 and arm64.
    [LibraryImport("libc", SetLastError = true)]
    internal static partial int fcntl(int fd, int cmd, int arg);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int dup2(int oldFd, int newFd);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int pipe2(int* fds, int flags);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int fchown(int fd, int uid, int gid);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int mkfifo(byte* path, int mode);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial nint read(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial nint write(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial nint splice(int fdIn, nint offIn, int fdOut, nint offOut, nuint length, uint flags);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int eventfd(uint initial, int flags);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int statx(int dirFd, byte* path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial byte* realpath(byte* path, byte* resolved);

    [LibraryImport("libc")]
    internal static partial void free(void* pointer);
}
