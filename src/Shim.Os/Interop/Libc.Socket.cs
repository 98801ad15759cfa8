using System.Runtime.InteropServices;

namespace Shim.Os.Interop;

/// <summary>Unix stream sockets driven by the I/O loop: socket, bind, listen, accept4, connect, send, recv.</summary>
internal static unsafe partial class Libc
{
    [LibraryImport("libc", SetLastError = true)]
    internal static partial int socket(int domain, int type, int protocol);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int bind(int fd, byte* address, uint length);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int listen(int fd, int backlog);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int accept4(int fd, byte* address, uint* length, int flags);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int connect(int fd, byte* address, uint length);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial nint send(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial nint recv(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int shutdown(int fd, int how);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int getsockopt(int fd, int level, int name, byte* value, uint* length);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int getsockname(int fd, byte* address, uint* length);
}
