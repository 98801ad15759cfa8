namespace Shim.Core.Cgroups;

/// <summary>A container's cgroup, v1 or v2: its metrics for Stats, and the identity the OOM watcher needs.</summary>
public interface ICgroup
{
    /// <summary>The cgroup path as /proc/&lt;pid&gt;/cgroup lists it (v1: the memory controller's path, or the first one).</summary>
    string Path { get; }

    /// <summary>Reads the cgroup files now and packs io.containerd.cgroups.v1.Metrics or v2.Metrics; throws a NotFound <see cref="Errors.ShimException"/> when the cgroup no longer exists.</summary>
    Google.Protobuf.WellKnownTypes.Any Stats();
}
