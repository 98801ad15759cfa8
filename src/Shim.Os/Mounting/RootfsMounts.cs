using Microsoft.Win32.SafeHandles;
using Shim.Os.Interop;

namespace Shim.Os.Mounting;

/// <summary>
/// Mounts a container's rootfs from the mounts containerd sends in Create, doing what containerd's
/// mount package does for them (core/mount/mount_linux.go in 2.x, mount/mount_linux.go in 1.6)
/// beyond handing the options to mount(2): lowerdir lists longer than a page, uidmap=/gidmap=
/// (idmapped mounts), loop, X-containerd.* dropped, targets resolved inside the rootfs. Either
/// every mount is made or nothing stays mounted or attached.
/// </summary>
public static class RootfsMounts
{
    private static readonly int PageSize = Environment.SystemPageSize;

    /// <summary>
    /// Mounts each request in order under <paramref name="rootfs"/> (an existing directory). On a
    /// failure unmounts everything under the rootfs again and throws <see cref="MountException"/>
    /// naming the mount (its position, type, source and target) and the option or step that failed.
    /// </summary>
    public static void MountAll(IReadOnlyList<MountRequest> mounts, string rootfs, Reaper reaper)
    {
        ArgumentNullException.ThrowIfNull(mounts);
        for (int i = 0; i < mounts.Count; i++)
        {
            try
            {
                Mount(mounts[i], rootfs, reaper);
            }
            catch (Exception ex) when (ex is ErrnoException or FormatException or IOException or UnauthorizedAccessException)
            {
                Mounts.UnmountRecursive(rootfs);
                string which = mounts.Count == 1 ? $"mount {mounts[i]}" : $"mount {i + 1} of {mounts.Count} ({mounts[i]})";
                throw new MountException($"{which}: {ex.Message}", badInput: ex is FormatException, ex);
            }
        }
    }

    private static void Mount(MountRequest m, string rootfs, Reaper reaper)
    {
        var options = m.Options;
        var parsed = MountOptions.Parse(options);
        bool overlay = m.Type == "overlay";
        SafeFileHandle? userNamespace = null;
        string? idmappedLowers = null;
        LoopDevice? loop = null;
        try
        {
            if (parsed.IsIdMapped)
            {
                userNamespace = UserNamespace.Create(reaper, ParseMap(parsed.UidMap!, "uidmap"), ParseMap(parsed.GidMap!, "gidmap"));
                if (overlay)
                {
                    // overlay takes the mapping from its layers: idmap the lowers, not the overlay
                    (options, idmappedLowers) = IdmapLowers(options, rootfs, userNamespace);
                }
            }
            string? cwd = null;
            if (overlay && OverlayLowerdirs.TooLong(options, PageSize))
            {
                (cwd, options) = OverlayLowerdirs.Compact(options);
            }
            parsed = MountOptions.Parse(options);
            if (parsed.Data.Length > PageSize)
            {
                throw new FormatException($"options are {parsed.Data.Length} bytes, more than mount(2) takes ({PageSize})");
            }
            string source = m.Source;
            if (parsed.Loop)
            {
                loop = LoopDevice.Attach(m.Source, parsed.IsReadOnly, parsed.LoopDirectIo);
                source = loop.Path;
            }
            Apply(m, source, rootfs, parsed, cwd);
            if (userNamespace is not null && !overlay)
            {
                using var target = MountTarget.Open(rootfs, m.Target);
                string path = MountTarget.ProcPath(target);
                // move_mount refuses the /proc/self/fd path of the bind's root (EINVAL); the path it
                // resolves to was just checked to lie in the rootfs, where nothing runs yet.
                string real = Mounts.RealPath(path) ?? path;
                IdmappedMount.Attach(path, real, userNamespace, parsed.IsReadOnly);
            }
        }
        finally
        {
            loop?.Dispose();
            if (idmappedLowers is not null)
            {
                // the overlay holds its own private references to its layers by now
                RemoveIdmappedLowers(idmappedLowers);
            }
            userNamespace?.Dispose();
        }
    }

    private static void Apply(MountRequest m, string source, string rootfs, MountOptions parsed, string? cwd)
    {
        ulong flags = parsed.Flags;
        // A remount that only changes propagation must not pass MS_REMOUNT alone: that would
        // reset every other flag of the mount (containerd skips it the same way).
        if (!parsed.IsRemount || parsed.Data.Length > 0 || flags != Libc.MS_REMOUNT)
        {
            using var target = MountTarget.Open(rootfs, m.Target);
            string path = MountTarget.ProcPath(target);
            string? data = parsed.Data.Length > 0 ? parsed.Data : null;
            if (cwd is null)
            {
                Call(source, path, m.Type, flags, data, "mount(2)");
            }
            else
            {
                OwnCwdThread.Run(cwd, () => Call(source, path, m.Type, flags, data, $"mount(2) from {cwd} (lowerdir relative to it)"));
            }
        }
        // Follow-up calls reopen the target: the first descriptor still names what lies beneath the new mount.
        if (parsed.Propagation != 0)
        {
            using var target = MountTarget.Open(rootfs, m.Target);
            Call(null, MountTarget.ProcPath(target), null, parsed.Propagation, null, "set propagation");
        }
        if (parsed.IsBind && parsed.IsReadOnly && !parsed.IsRemount)
        {
            using var target = MountTarget.Open(rootfs, m.Target);
            string path = MountTarget.ProcPath(target);
            // The kernel ignores MS_RDONLY on the initial bind. Keep the flags the mount already
            // has locked (nosuid/nodev/noexec) or the remount fails inside a user namespace.
            Call(null, path, null, flags | Libc.MS_REMOUNT | Mounts.LockedFlags(path), null, "remount read-only");
        }
    }

    private static (IReadOnlyList<string> Options, string Directory) IdmapLowers(IReadOnlyList<string> options, string rootfs, SafeFileHandle userNamespace)
    {
        var (index, dirs) = OverlayLowerdirs.Find(options);
        if (index < 0)
        {
            throw new FormatException("uidmap=/gidmap= on an overlay without a lowerdir= option");
        }
        // containerd idmaps the directory holding all layers once and reaches each layer through
        // it (core/mount/mount_linux.go doPrepareIDMappedOverlay)
        string parent = OverlayLowerdirs.CommonParent(dirs)
            ?? throw new FormatException($"option \"{options[index]}\": the layers share no parent directory to idmap");
        string directory = Path.Combine(Path.GetDirectoryName(rootfs.TrimEnd('/'))!, ".idmapped-lowers-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(directory);
        try
        {
            IdmappedMount.Attach(parent, directory, userNamespace, readOnly: true);
        }
        catch
        {
            Directory.Delete(directory);
            throw;
        }
        return (OverlayLowerdirs.WithDirs(options, index, dirs.Select(d => directory + d[parent.Length..])), directory);
    }

    private static void RemoveIdmappedLowers(string directory)
    {
        if (Libc.umount2(directory, Libc.MNT_DETACH) < 0 && Errno.Last is not (Errno.EINVAL or Errno.ENOENT))
        {
            throw ErrnoException.FromLast($"umount {directory}");
        }
        Directory.Delete(directory);
    }

    private static IdMapping[] ParseMap(string value, string name)
    {
        try
        {
            return IdMapping.ParseList(value);
        }
        catch (FormatException ex)
        {
            throw new FormatException($"option \"{name}={value}\": {ex.Message}", ex);
        }
    }

    private static void Call(string? source, string target, string? type, ulong flags, string? data, string step)
    {
        if (Libc.mount(source, target, type, (nuint)flags, data) < 0)
        {
            int errno = Errno.Last;
            string options = data is null ? "" : $" with data \"{data}\"";
            throw new ErrnoException(errno, $"{step}{options}");
        }
    }
}
