using Shim.Os.Interop;

// the constants keep the kernel's names (statfs magic numbers), so they can be looked up in its headers
#pragma warning disable CA1707

namespace Shim.Os.Notify;

/// <summary>Which filesystem holds a path (statfs f_type).</summary>
public static class FileSystems
{
    /// <summary>cgroup v1 hierarchy.</summary>
    public const long CGROUP_SUPER_MAGIC = Libc.CGROUP_SUPER_MAGIC;
    /// <summary>cgroup v2 unified hierarchy.</summary>
    public const long CGROUP2_SUPER_MAGIC = Libc.CGROUP2_SUPER_MAGIC;
    /// <summary>tmpfs (what /sys/fs/cgroup is on hosts with v1 or hybrid cgroups).</summary>
    public const long TMPFS_MAGIC = Libc.TMPFS_MAGIC;

    /// <summary>statfs(2) f_type of the filesystem holding <paramref name="path"/>; null when the path cannot be stat'ed.</summary>
    public static unsafe long? TryGetMagic(string path)
    {
        byte* native = NativeStrings.Single(path, out var owner);
        using (owner)
        {
            byte* buffer = stackalloc byte[Libc.StatfsBufferSize];
            int rc;
            do
            {
                rc = Libc.statfs(native, buffer);
            }
            while (rc < 0 && Errno.Last == Errno.EINTR);
            if (rc < 0)
            {
                return null;
            }
            return *(long*)(buffer + Libc.StatfsTypeOffset);
        }
    }
}
