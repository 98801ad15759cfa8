using System.Runtime.InteropServices;

namespace Shim.Os.Interop;

/// <summary>epoll(7).</summary>
internal static unsafe partial class Libc
{
    [LibraryImport("libc", SetLastError = true)]
    internal static partial int epoll_create1(int flags);

    /// <summary>event points at one epoll_event laid out per <see cref="EpollEventSize"/>.</summary>
    [LibraryImport("libc", SetLastError = true)]
    internal static partial int epoll_ctl(int epfd, int op, int fd, byte* @event);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int epoll_wait(int epfd, byte* events, int maxEvents, int timeoutMs);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int usleep(uint microseconds);
}
