using Microsoft.Win32.SafeHandles;
using Shim.Core.Cgroups;
using Shim.Core.Errors;
using Shim.Os;

namespace Shim.Core.Tests.Cgroups;

/// <summary>Real cgroup v1 groups on this machine (root); a child is moved in before it does anything.</summary>
[Collection(CgroupCollection.Name)]
public sealed class CgroupV1LiveTests
{
    [Fact]
    public async Task Stats_of_a_real_cgroup_show_the_moved_child()
    {
        CgroupPrereqs.RequireV1Root();
        using var group = new LiveCgroupV1("memory", "cpu", "cpuacct", "pids", "blkio");
        var (child, release) = SpawnWaitingOnStdin("exec /bin/sleep 1000");
        try
        {
            group.Add(child.Pid);
            release.Dispose();   // EOF on stdin: `read` returns, exec sleep faults its pages in the new cgroup

            var cgroup = Assert.IsType<Shim.Core.Cgroups.CgroupV1>(CgroupFactory.ForPid(child.Pid));
            Assert.Equal(group.Path, cgroup.Path);
            Assert.Equal(Path.Join("/sys/fs/cgroup/memory", group.Name), cgroup.MemoryDirectory);

            // sleeping in sleep(1): exec is done and the scheduler has charged its run time to the group
            await CgroupPrereqs.WaitUntil(() => File.ReadAllText($"/proc/{child.Pid}/comm").Trim() == "sleep" && ProcState(child.Pid) == 'S', "the child to exec sleep and sleep");
            var m = cgroup.ReadMetrics();

            Assert.True(m.Memory.Usage.Usage > 0, $"memory usage {m.Memory.Usage.Usage}");
            Assert.True(m.Memory.Usage.Limit > 0);
            Assert.NotNull(m.MemoryOomControl);
            Assert.Equal(0UL, m.MemoryOomControl.OomKill);
            Assert.Equal(1UL, m.Pids.Current);
            Assert.Equal(0UL, m.Pids.Limit);   // "max"
            Assert.True(m.Cpu.Usage.Total > 0, "exec ran in the group");
            Assert.NotEmpty(m.Cpu.Usage.PerCpu);
            Assert.Equal(m.Cpu.Usage.Total, m.Cpu.Usage.PerCpu.Aggregate(0UL, (a, b) => a + b));
            Assert.NotNull(m.Cpu.Throttling);
            Assert.NotNull(m.Blkio);
            Assert.Equal("io.containerd.cgroups.v1.Metrics", cgroup.Stats().TypeUrl);
        }
        finally
        {
            Signals.Kill(child.Pid, Signals.SIGKILL);
            await child.Exited.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
        }

        // once the groups are removed, Stats says so
        var gone = CgroupFactory.Load(ProcCgroup.Parse($"4:memory:{group.Path}\n8:pids:{group.Path}\n"), CgroupMode.Hybrid);
        group.Remove();
        var ex = Assert.Throws<ShimException>(() => gone.Stats());
        Assert.Equal(ErrorKind.NotFound, ex.Kind);
    }

    private static char ProcState(int pid)
    {
        string stat = File.ReadAllText($"/proc/{pid}/stat");
        return stat[stat.LastIndexOf(')') + 2];
    }

    /// <summary>sh -c 'read x; &lt;script&gt;' with stdin on a pipe; disposing the returned handle releases it.</summary>
    internal static (ChildProcess Child, SafeFileHandle Release) SpawnWaitingOnStdin(string script)
    {
        var (read, write) = Pipes.Create();
        using (read)
        {
            var child = Reaper.Instance.Spawn(new SpawnOptions
            {
                Path = "/bin/sh",
                Args = ["sh", "-c", "read x; " + script],
                Fds = new Dictionary<int, System.Runtime.InteropServices.SafeHandle> { [0] = read },
            });
            return (child, write);
        }
    }
}
