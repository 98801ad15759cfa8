using Shim.Os.Interop;

namespace Shim.Os;

/// <summary>Mounting and unmounting (rootfs layers, bind mounts).</summary>
public static class Mounts
{
    /// <summary>Parses containerd mount options (unknown ones become the data string joined with ',') and mounts; a read-only bind gets the remount Linux requires. Throws ErrnoException("mount &lt;type&gt; &lt;source&gt; on &lt;target&gt;").</summary>
    public static void Mount(string type, string source, string target, IReadOnlyList<string> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var parsed = MountOptions.Parse(options);
        string operation = $"mount {type} {source} on {target}";
        ulong flags = parsed.Flags;

        // A remount that only changes propagation must not pass MS_REMOUNT alone: that would
        // reset every other flag of the mount (containerd skips it the same way).
        if (!parsed.IsRemount || parsed.Data.Length > 0 || flags != Libc.MS_REMOUNT)
        {
            Call(source, target, type, flags, parsed.Data.Length > 0 ? parsed.Data : null, operation);
        }
        if (parsed.Propagation != 0)
        {
            Call(null, target, null, parsed.Propagation, null, operation);
        }
        if (parsed.IsBind && parsed.IsReadOnly && !parsed.IsRemount)
        {
            // The kernel ignores MS_RDONLY on the initial bind. Keep the flags the mount already
            // has locked (nosuid/nodev/noexec) or the remount fails inside a user namespace.
            ulong remount = flags | Libc.MS_REMOUNT | LockedFlags(target);
            Call(null, target, null, remount, null, operation);
        }
    }

    /// <summary>Unmounts target and everything mounted beneath it, deepest first (MNT_DETACH on EBUSY); a missing or unmounted target is not an error.</summary>
    public static void UnmountRecursive(string target)
    {
        string? root = RealPath(target);
        if (root is null)
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

    private static void Call(string? source, string target, string? type, ulong flags, string? data, string operation)
    {
        if (Libc.mount(source, target, type, (nuint)flags, data) < 0)
        {
            throw ErrnoException.FromLast(operation);
        }
    }

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
