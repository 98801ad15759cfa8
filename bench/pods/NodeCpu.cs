using System.Globalization;

namespace Shim.E2E.Tests.Cri;

/// <summary>
/// The CPU a pod costs the node, counted by cgroup rather than by /proc/stat: containerd is moved
/// into a cgroup of its own at the start, so it and everything it forks afterwards (shims, runc,
/// runc init, CNI plugins, the namespace holder) are charged there, and the pods' containers
/// (pause included) are charged under the pods' cgroup parent. The CRI client (this test host and
/// the dotnet CLI above it, a kubelet's part on a real node) is left out: /proc/stat counted it, and
/// its JIT and logging were half of what it reported. cgroup v1 reads cpuacct.usage (ns), cgroup
/// v2 reads cpu.stat's usage_usec; both are hierarchical and keep what exited children spent.
/// </summary>
internal sealed class NodeCpu : IDisposable
{
    private readonly string _root;
    private readonly string _daemonGroup;
    private readonly string _daemonHome;
    private readonly string _podsGroup;
    private int _daemonPid;
    private readonly bool _v1;

    public NodeCpu(int daemonPid, string name, string podsCgroupParent)
    {
        _v1 = Directory.Exists("/sys/fs/cgroup/cpuacct");
        _root = _v1 ? "/sys/fs/cgroup/cpuacct" : "/sys/fs/cgroup";
        _daemonGroup = Path.Combine(_root, name + "-daemon");
        _podsGroup = _root + podsCgroupParent;
        _daemonPid = daemonPid;
        _daemonHome = _root + CurrentGroup(daemonPid);
        Directory.CreateDirectory(_daemonGroup);
        File.WriteAllText(Path.Combine(_daemonGroup, "cgroup.procs"), daemonPid.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>A restarted containerd (a new pid) joins the daemon's group.</summary>
    public void Adopt(int daemonPid)
    {
        _daemonPid = daemonPid;
        File.WriteAllText(Path.Combine(_daemonGroup, "cgroup.procs"), daemonPid.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>Nanoseconds of CPU spent so far by containerd, its descendants and the pods.</summary>
    public long UsedNs() => Read(_daemonGroup) + Read(_podsGroup);

    private long Read(string group)
    {
        try
        {
            if (_v1)
            {
                return long.Parse(File.ReadAllText(Path.Combine(group, "cpuacct.usage")).Trim(), CultureInfo.InvariantCulture);
            }
            string line = File.ReadLines(Path.Combine(group, "cpu.stat")).First(l => l.StartsWith("usage_usec ", StringComparison.Ordinal));
            return long.Parse(line["usage_usec ".Length..], CultureInfo.InvariantCulture) * 1000;
        }
        catch (IOException)
        {
            return 0;   // the pods' parent appears with the first pod
        }
    }

    // the daemon's cgroup in this hierarchy: "N:cpu,cpuacct:/path" on v1, "0::/path" on v2
    private string CurrentGroup(int pid) =>
        File.ReadLines($"/proc/{pid}/cgroup").Select(l => l.Split(':', 3))
            .First(f => _v1 ? f[1].Split(',').Contains("cpuacct") : f[0] == "0").Last();

    /// <summary>containerd goes back to the cgroup it was in and the daemon's group is removed.</summary>
    public void Dispose()
    {
        try
        {
            File.WriteAllText(Path.Combine(_daemonHome, "cgroup.procs"), _daemonPid.ToString(CultureInfo.InvariantCulture));
        }
        catch (IOException)
        {
            // containerd is gone already
        }
        try
        {
            Directory.Delete(_daemonGroup);
        }
        catch (IOException)
        {
            // a straggler still in it; PrivateContainerd's disposal reports what it leaves
        }
    }
}
