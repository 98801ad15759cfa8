using System.Runtime.InteropServices;

namespace Shim.Os.Interop;

/// <summary>inotify(7) and statfs(2); eventfd(2) is declared with the other fd calls.</summary>
internal static unsafe partial class Libc
{
    [LibraryImport("libc", SetLastError = true)]
    internal static partial int inotify_init1(int flags);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int inotify_add_watch(int fd, byte* path, uint mask);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int inotify_rm_watch(int fd, int wd);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int statfs(byte* path, byte* buffer);
}
