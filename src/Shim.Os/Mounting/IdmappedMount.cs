using Microsoft.Win32.SafeHandles;
using Shim.Os.Interop;

namespace Shim.Os.Mounting;

/// <summary>
/// Idmapped mounts: a detached copy of a tree (open_tree OPEN_TREE_CLONE), given a user
/// namespace's mapping (mount_setattr MOUNT_ATTR_IDMAP), attached somewhere (move_mount), as
/// containerd's IDMapMountWithAttrs does (core/mount/mount_idmapped_linux.go).
/// </summary>
internal static class IdmappedMount
{
    /// <summary>Attaches an idmapped, private copy of the tree at <paramref name="source"/> on <paramref name="target"/>; nothing is left attached on failure.</summary>
    internal static unsafe void Attach(string source, string target, SafeFileHandle userNamespace, bool readOnly)
    {
        using var tree = OpenTreeClone(source);
        using (var ns = new FdUse(userNamespace))
        using (var treeUse = new FdUse(tree))
        {
            ulong* attr = stackalloc ulong[Libc.MountAttrSize / sizeof(ulong)];
            attr[0] = Libc.MOUNT_ATTR_IDMAP | (readOnly ? Libc.MOUNT_ATTR_RDONLY : 0);
            attr[1] = 0;
            attr[2] = Libc.MS_PRIVATE;
            attr[3] = (ulong)ns.Fd;
            byte empty = 0;
            if (Libc.syscall5(Libc.SYS_mount_setattr, treeUse.Fd, (nint)(&empty), (nint)(Libc.AT_EMPTY_PATH | Libc.AT_RECURSIVE), (nint)attr, Libc.MountAttrSize) < 0)
            {
                throw ErrnoException.FromLast($"mount_setattr MOUNT_ATTR_IDMAP on a copy of {source}");
            }
            byte* to = NativeStrings.Single(target, out var owner);
            using (owner)
            {
                if (Libc.syscall5(Libc.SYS_move_mount, treeUse.Fd, (nint)(&empty), Libc.AT_FDCWD, (nint)to, (nint)Libc.MOVE_MOUNT_F_EMPTY_PATH) < 0)
                {
                    throw ErrnoException.FromLast($"move_mount the idmapped copy of {source} to {target}");
                }
            }
        }
        // Closing the detached tree's last descriptor unmounts it if it never got attached.
    }

    private static unsafe SafeFileHandle OpenTreeClone(string source)
    {
        byte* path = NativeStrings.Single(source, out var owner);
        using (owner)
        {
            long fd = Libc.syscall4(Libc.SYS_open_tree, Libc.AT_FDCWD, (nint)path,
                (nint)(Libc.OPEN_TREE_CLONE | (uint)Libc.O_CLOEXEC | Libc.AT_RECURSIVE), 0);
            if (fd < 0)
            {
                throw ErrnoException.FromLast($"open_tree {source}");
            }
            return new SafeFileHandle((nint)fd, ownsHandle: true);
        }
    }
}
