using System.Globalization;
using Shim.Core.Errors;

namespace Shim.Core.Cgroups;

/// <summary>Finds a process's cgroup from /proc/&lt;pid&gt;/cgroup (as the Go shim does after create).</summary>
internal static class CgroupFactory
{
    /// <summary>Where cgroup hierarchies are mounted.</summary>
    public const string DefaultRoot = "/sys/fs/cgroup";

    /// <summary>The cgroup of <paramref name="pid"/>: v2 when <paramref name="root"/> is a unified mount, else v1 (hybrid included).</summary>
    /// <exception cref="ShimException">NotFound when the process is gone; Unavailable when no cgroup hierarchy is mounted.</exception>
    public static ICgroup ForPid(int pid, string root = DefaultRoot) =>
        ForPid(pid, root == DefaultRoot ? CgroupModes.Host : CgroupModes.Detect(root), root, "/proc");

    internal static ICgroup ForPid(int pid, CgroupMode mode, string root, string procRoot)
    {
        string file = Path.Join(procRoot, pid.ToString(CultureInfo.InvariantCulture), "cgroup");
        string? text = CgroupFiles.TryReadText(file);
        if (text is null)
        {
            throw new ShimException(ErrorKind.NotFound, $"read {file}: process {pid} does not exist");
        }
        ProcCgroup parsed;
        try
        {
            parsed = ProcCgroup.Parse(text);
        }
        catch (FormatException ex)
        {
            throw new ShimException(ErrorKind.Internal, $"parse {file}: {ex.Message}", ex);
        }
        try
        {
            return Load(parsed, mode, root);
        }
        catch (ShimException ex)
        {
            throw new ShimException(ex.Kind, $"cgroup of process {pid} ({file}): {ex.Message}", ex);
        }
    }

    /// <summary>The cgroup described by parsed /proc/&lt;pid&gt;/cgroup contents under <paramref name="root"/>.</summary>
    public static ICgroup Load(ProcCgroup cgroups, CgroupMode mode, string root = DefaultRoot)
    {
        ArgumentNullException.ThrowIfNull(cgroups);
        switch (mode)
        {
            case CgroupMode.Unified:
                return cgroups.Unified is { } path
                    ? new CgroupV2(path, root)
                    : throw new ShimException(ErrorKind.NotFound, "no cgroup v2 entry (0::) for the process");
            case CgroupMode.Legacy or CgroupMode.Hybrid:
                return cgroups.Controllers.Count > 0
                    ? new CgroupV1(cgroups.Controllers, root)
                    : throw new ShimException(ErrorKind.NotFound, "no cgroup v1 controllers for the process");
            default:
                throw new ShimException(ErrorKind.Unavailable, $"no cgroup hierarchy mounted at {root}");
        }
    }
}
