using Shim.Core.Cgroups;

namespace Shim.Core.Tests.Cgroups;

public sealed class CgroupV2ControllersTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("rcs-v2ctl-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void Every_root_controller_is_enabled_on_the_root_and_each_ancestor_but_not_the_container_cgroup()
    {
        File.WriteAllText(Path.Combine(_root, "cgroup.controllers"), "cpu memory pids\n");
        string[] levels = [_root, Path.Combine(_root, "k8s.io"), Path.Combine(_root, "k8s.io", "c1")];
        foreach (var level in levels)
        {
            Directory.CreateDirectory(level);
            File.WriteAllText(Path.Combine(level, "cgroup.subtree_control"), "");
        }
        // a regular file keeps only the last write; the kernel file accumulates, so count the writes
        Assert.Equal(6, CgroupV2Controllers.EnableAll("/k8s.io/c1", _root));
        Assert.Equal("+pids", File.ReadAllText(Path.Combine(levels[1], "cgroup.subtree_control")));
        Assert.Equal("", File.ReadAllText(Path.Combine(levels[2], "cgroup.subtree_control")));
    }

    [Fact]
    public void A_host_without_a_unified_root_changes_nothing()
    {
        Assert.Equal(0, CgroupV2Controllers.EnableAll("/k8s.io/c1", _root));
    }
}
