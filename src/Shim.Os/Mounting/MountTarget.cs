using System.Globalization;
using Microsoft.Win32.SafeHandles;
using Shim.Os.Interop;

namespace Shim.Os.Mounting;

/// <summary>
/// A mount target inside the rootfs, resolved by the kernel with openat2 RESOLVE_IN_ROOT: ".."
/// stops at the rootfs and an absolute symlink starts from it, so no target can lead out (the
/// same scoping containerd gets from fs.RootPath in core/mount/mount.go). Mounts go to the
/// opened descriptor through /proc/self/fd, never to a path that could be swapped in between.
/// </summary>
internal static class MountTarget
{
    /// <summary>
    /// Opens <paramref name="target"/> (relative to <paramref name="root"/>; "" or "/" is the root
    /// itself) as an O_PATH descriptor. A target whose ".." components would climb above the root
    /// is refused with <see cref="FormatException"/>; a missing one fails with ENOENT.
    /// </summary>
    internal static SafeFileHandle Open(string root, string target)
    {
        string relative = Relative(target);
        var rootFd = Fds.Open(root, Libc.O_PATH | Libc.O_DIRECTORY);
        if (relative.Length == 0)
        {
            return rootFd;
        }
        using (rootFd)
        {
            return OpenInRoot(rootFd, relative, target);
        }
    }

    /// <summary>The path through which the kernel reaches the descriptor's file.</summary>
    internal static string ProcPath(SafeFileHandle fd) =>
        "/proc/self/fd/" + ((int)fd.DangerousGetHandle()).ToString(CultureInfo.InvariantCulture);

    /// <summary>The target without leading slashes; throws if its ".." components climb above the root.</summary>
    internal static string Relative(string target)
    {
        int depth = 0;
        foreach (string part in target.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == "..")
            {
                if (--depth < 0)
                {
                    throw new FormatException($"target \"{target}\" leads out of the rootfs");
                }
            }
            else if (part != ".")
            {
                depth++;
            }
        }
        return target.TrimStart('/');
    }

    private static unsafe SafeFileHandle OpenInRoot(SafeFileHandle rootFd, string relative, string target)
    {
        ulong* how = stackalloc ulong[Libc.OpenHowSize / sizeof(ulong)];
        how[0] = (ulong)(Libc.O_PATH | Libc.O_CLOEXEC);
        how[1] = 0;
        how[2] = Libc.RESOLVE_IN_ROOT | Libc.RESOLVE_NO_MAGICLINKS;
        byte* path = NativeStrings.Single(relative, out var owner);
        using (owner)
        using (var use = new FdUse(rootFd))
        {
            long fd;
            do
            {
                fd = Libc.syscall4(Libc.SYS_openat2, use.Fd, (nint)path, (nint)how, Libc.OpenHowSize);
            }
            while (fd < 0 && Errno.Last is Errno.EINTR or Errno.EAGAIN);
            if (fd < 0)
            {
                throw ErrnoException.FromLast($"resolve target {target} in the rootfs");
            }
            return new SafeFileHandle((nint)fd, ownsHandle: true);
        }
    }
}
