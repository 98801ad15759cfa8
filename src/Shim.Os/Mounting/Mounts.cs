using Shim.Os.Interop;

namespace Shim.Os.Mounting;

/// <summary>Unmounting and mount-point queries; mounting is <see cref="RootfsMounts"/>.</summary>
public static class Mounts
{
    /// <summary>Unmounts target and everything mounted beneath it, deepest first (MNT_DETACH on EBUSY); a missing or unmounted target is not an error.</summary>
    public static void UnmountRecursive(string target)
    {
        string? root = RealPath(target);
        if (root is null)
        {
            return;
        }
        // the usual case, a rootfs with nothing mounted beneath it, goes without the node's mount
        // table (every pod's mounts, read on every container delete)
        if (UnmountStack(root))
        {
            return;
        }
        var points = MountInfo.ReadMountPoints();
        var victims = new List<(string Path, int Depth, int Order)>();
        for (int i = 0; i < points.Count; i++)
        {
            if (MountInfo.IsAtOrUnder(points[i], root))
            {
                victims.Add((points[i], points[i].Count(c => c == '/'), i));
            }
        }
        // Deepest first; for the same path the later (upper) layer of a stack first.
        victims.Sort((a, b) => a.Depth != b.Depth ? b.Depth.CompareTo(a.Depth) : b.Order.CompareTo(a.Order));
        foreach (var (path, _, _) in victims)
        {
            Unmount(path);
        }
    }

    /// <summary>
    /// Unmounts the mounts stacked at <paramref name="path"/>, top first; true once at least one went
    /// and nothing is mounted there any more (umount2 answers EINVAL). False when nothing was mounted
    /// there or a layer has mounts beneath it (EBUSY): the caller then reads the mount table.
    /// </summary>
    private static bool UnmountStack(string path)
    {
        bool any = false;
        while (Libc.umount2(path, 0) == 0)
        {
            any = true;
        }
        return any && Errno.Last == Errno.EINVAL;
    }

    /// <summary>Mounts a tmpfs at <paramref name="target"/>, nosuid, nodev and noexec (a pod's /dev/shm), with <paramref name="data"/> (mode=, size=).</summary>
    public static void MountTmpfs(string target, string data)
    {
        if (Libc.mount("shm", target, "tmpfs", (nuint)(Libc.MS_NOSUID | Libc.MS_NODEV | Libc.MS_NOEXEC), data) < 0)
        {
            throw ErrnoException.FromLast($"mount tmpfs on {target} ({data})");
        }
    }

    /// <summary>True if something is mounted exactly at path (symlinks resolved).</summary>
    public static bool IsMountPoint(string path)
    {
        string? real = RealPath(path);
        return real is not null && MountInfo.ReadMountPoints().Contains(real);
    }

    private static void Unmount(string path)
    {
        if (Libc.umount2(path, 0) == 0)
        {
            return;
        }
        int errno = Errno.Last;
        if (errno == Errno.EBUSY)
        {
            if (Libc.umount2(path, Libc.MNT_DETACH) == 0)
            {
                return;
            }
            errno = Errno.Last;
        }
        if (errno is Errno.EINVAL or Errno.ENOENT)
        {
            return;   // not (or no longer) mounted
        }
        throw new ErrnoException(errno, $"umount {path}");
    }

    /// <summary>The flags a mount has locked (nosuid/nodev/noexec) as MS_* bits, for a remount that must keep them.</summary>
    internal static unsafe ulong LockedFlags(string target)
    {
        byte* buffer = stackalloc byte[Libc.StatvfsSize];
        if (Libc.statvfs(target, buffer) < 0)
        {
            return 0;
        }
        ulong st = *(ulong*)(buffer + Libc.StatvfsFlagOffset);
        ulong flags = 0;
        if ((st & Libc.ST_NOSUID) != 0) { flags |= Libc.MS_NOSUID; }
        if ((st & Libc.ST_NODEV) != 0) { flags |= Libc.MS_NODEV; }
        if ((st & Libc.ST_NOEXEC) != 0) { flags |= Libc.MS_NOEXEC; }
        return flags;
    }

    /// <summary>realpath(3); null if the path does not exist.</summary>
    internal static unsafe string? RealPath(string path)
    {
        byte* native = NativeStrings.Single(path, out var owner);
        using (owner)
        {
            byte* resolved = Libc.realpath(native, null);
            if (resolved == null)
            {
                int errno = Errno.Last;
                if (errno is Errno.ENOENT or Errno.ENOTDIR)
                {
                    return null;
                }
                throw new ErrnoException(errno, $"realpath {path}");
            }
            try
            {
                return NativeStrings.Read(resolved);
            }
            finally
            {
                Libc.free(resolved);
            }
        }
    }
}
