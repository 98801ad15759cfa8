using System.Globalization;
using Shim.Core.Cgroups;
using Shim.Core.Logging;

namespace Shim.Core.Cli;

/// <summary>
/// Where the long-lived shim process goes, done by `start` right after spawning it: the
/// `shim_cgroup` of the runtime options, and an OOM score one above containerd's, so the kernel
/// picks the shim before the daemon but never raises a container's chances (PROTOCOL.md §14).
/// </summary>
public static class ShimPlacement
{
    /// <summary>Moves <paramref name="pid"/> into <paramref name="cgroupPath"/> (v1: every mounted controller; v2: the unified tree).</summary>
    public static void MoveToCgroup(int pid, string cgroupPath, string root = CgroupFactory.DefaultRoot)
    {
        ArgumentNullException.ThrowIfNull(cgroupPath);
        if (cgroupPath.Length == 0)
        {
            return;
        }
        string relative = cgroupPath.TrimStart('/');
        string procs = pid.ToString(CultureInfo.InvariantCulture);
        if (CgroupModes.Detect(root).IsV2())
        {
            File.WriteAllText(Path.Combine(root, relative, "cgroup.procs"), procs);
            return;
        }
        int moved = 0;
        foreach (var controller in Directory.EnumerateDirectories(root))
        {
            string dir = Path.Combine(controller, relative);
            if (Directory.Exists(dir) && File.Exists(Path.Combine(dir, "cgroup.procs")))
            {
                File.WriteAllText(Path.Combine(dir, "cgroup.procs"), procs);
                moved++;
            }
        }
        if (moved == 0)
        {
            throw new DirectoryNotFoundException($"shim cgroup {cgroupPath} exists under no controller of {root}");
        }
    }

    /// <summary>Sets <paramref name="pid"/>'s oom_score_adj to containerd's + 1 (clamped to 1000); permission errors are ignored.</summary>
    public static void AdjustOomScore(int pid, int containerdPid)
    {
        try
        {
            int score = Math.Min(Shim.Os.ProcessInfo.ReadOomScoreAdj(containerdPid) + 1, 1000);
            int current = Shim.Os.ProcessInfo.ReadOomScoreAdj(pid);
            if (score > current)
            {
                // raising needs no privilege; lowering would (and this machine has no CAP_SYS_RESOURCE)
                File.WriteAllText($"/proc/{pid}/oom_score_adj", score.ToString(CultureInfo.InvariantCulture));
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
        {
            // the start action has no log (its output goes to containerd as the address); the shim
            // only runs with containerd's score, as containerd's shim does when it cannot set its own
            _ = ex;
        }
    }
}
