using Shim.Os;
using Shim.Os.Notify;

namespace Shim.Core.Cgroups;

/// <summary>How cgroups are mounted on the host (containerd/cgroups <c>Mode()</c>).</summary>
internal enum CgroupMode
{
    /// <summary>Nothing usable at the root.</summary>
    Unavailable,
    /// <summary>cgroup v1 only.</summary>
    Legacy,
    /// <summary>cgroup v1 controllers plus an empty v2 hierarchy at &lt;root&gt;/unified; handled as v1.</summary>
    Hybrid,
    /// <summary>cgroup v2 only.</summary>
    Unified,
}

/// <summary>Detects the <see cref="CgroupMode"/> from the filesystem type of the cgroup root.</summary>
internal static class CgroupModes
{
    private static readonly Lazy<CgroupMode> HostMode = new(() => Detect(CgroupFactory.DefaultRoot));

    /// <summary>The mode of /sys/fs/cgroup, detected once.</summary>
    public static CgroupMode Host => HostMode.Value;

    /// <summary>statfs(root) is cgroup2 → Unified; else statfs(root/unified) cgroup2 → Hybrid; else Legacy; root missing → Unavailable.</summary>
    public static CgroupMode Detect(string root)
    {
        ArgumentNullException.ThrowIfNull(root);
        long? magic = FileSystems.TryGetMagic(root);
        if (magic is null)
        {
            return CgroupMode.Unavailable;
        }
        if (magic == FileSystems.CGROUP2_SUPER_MAGIC)
        {
            return CgroupMode.Unified;
        }
        return FileSystems.TryGetMagic(Path.Combine(root, "unified")) == FileSystems.CGROUP2_SUPER_MAGIC
            ? CgroupMode.Hybrid
            : CgroupMode.Legacy;
    }

    /// <summary>True when containers get v2 cgroups (only in unified mode; hybrid is v1 for containers).</summary>
    public static bool IsV2(this CgroupMode mode) => mode == CgroupMode.Unified;
}
