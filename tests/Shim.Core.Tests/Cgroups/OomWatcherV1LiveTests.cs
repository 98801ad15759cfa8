using Shim.Core.Cgroups;
using Shim.Core.Errors;
using Shim.Os;
using Shim.Os.Io;

namespace Shim.Core.Tests.Cgroups;

/// <summary>The v1 watcher against the kernel: a real OOM kill in a 16 MiB memory cgroup.</summary>
[Collection(CgroupCollection.Name)]
public sealed class OomWatcherV1LiveTests
{
    [Fact]
    public async Task An_oom_kill_in_a_16_MiB_cgroup_is_reported_before_the_exit_is_handled()
    {
        CgroupPrereqs.RequireV1Root();
        using var group = new LiveCgroupV1("memory");
        group.Write("memory", "memory.limit_in_bytes", "16M");
        group.Write("memory", "memory.swappiness", "0");
        if (group.Has("memory", "memory.memsw.limit_in_bytes"))
        {
            group.Write("memory", "memory.memsw.limit_in_bytes", "16M");
        }
        using var watcher = new OomWatcher(IoLoop.Shared);
        var reports = new List<(string Id, int Thread)>();
        var reported = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _ = IoLoop.Shared;

        // dash keeps the whole command substitution in memory: ~50 MB, far above the limit
        var (child, release) = CgroupV1LiveTests.SpawnWaitingOnStdin("a=$(yes | head -c 50000000); echo ${#a}");
        int fdsBefore = CgroupPrereqs.OpenFdCount();
        try
        {
            group.Add(child.Pid);
            var cgroup = CgroupFactory.ForPid(child.Pid);
            watcher.Add("c1", cgroup, id =>
            {
                lock (reports)
                {
                    reports.Add((id, Environment.CurrentManagedThreadId));
                }
                reported.TrySetResult();
            });
            Assert.Equal(fdsBefore + 1, CgroupPrereqs.OpenFdCount());   // the eventfd; memory.oom_control was closed

            release.Dispose();
            var exit = await child.Exited.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
            Assert.Equal(137, exit.Status);   // SIGKILL from the OOM killer

            // the lead's exit path: Drain, then publish the exit; the OOM must be in by then
            watcher.Drain("c1");
            lock (reports)
            {
                Assert.NotEmpty(reports);
                Assert.All(reports, r => Assert.Equal("c1", r.Id));
            }
            await reported.Task.WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);

            var metrics = Assert.IsType<Shim.Core.Cgroups.CgroupV1>(cgroup).ReadMetrics();
            Assert.True(metrics.MemoryOomControl.OomKill >= 1);
            Assert.Equal(16UL << 20, metrics.Memory.Usage.Limit);

            watcher.Remove("c1");
            Assert.Equal(fdsBefore, CgroupPrereqs.OpenFdCount());
            Assert.Equal(0, watcher.Count);
        }
        finally
        {
            Signals.Kill(child.Pid, Signals.SIGKILL);
        }
    }

    [Fact]
    public async Task Removing_the_cgroup_drops_the_watch_without_a_report()
    {
        CgroupPrereqs.RequireV1Root();
        using var group = new LiveCgroupV1("memory");
        using var watcher = new OomWatcher(IoLoop.Shared);
        _ = IoLoop.Shared;
        int fdsBefore = CgroupPrereqs.OpenFdCount();
        int reports = 0;
        var cgroup = CgroupFactory.Load(ProcCgroup.Parse($"4:memory:{group.Path}\n"), CgroupMode.Hybrid);
        watcher.Add("gone", cgroup, _ => Interlocked.Increment(ref reports));
        Assert.Equal(1, watcher.Count);

        group.Remove();   // the kernel signals the eventfd once as it drops the registration

        await CgroupPrereqs.WaitUntil(() => watcher.Count == 0, "the watch to remove itself");
        Assert.Equal(0, Volatile.Read(ref reports));
        await CgroupPrereqs.WaitUntil(() => CgroupPrereqs.OpenFdCount() == fdsBefore, "the eventfd to close");
        watcher.Remove("gone");   // no-op
    }

    [Fact]
    public void Adding_a_missing_cgroup_or_a_duplicate_id_fails_with_the_right_kind()
    {
        CgroupPrereqs.RequireV1Root();
        using var group = new LiveCgroupV1("memory");
        using var watcher = new OomWatcher(IoLoop.Shared);
        _ = IoLoop.Shared;
        int fdsBefore = CgroupPrereqs.OpenFdCount();

        var missing = CgroupFactory.Load(ProcCgroup.Parse("4:memory:/rcs-test-does-not-exist\n"), CgroupMode.Hybrid);
        var notFound = Assert.Throws<ShimException>(() => watcher.Add("x", missing, _ => { }));
        Assert.Equal(ErrorKind.NotFound, notFound.Kind);

        var noMemory = CgroupFactory.Load(ProcCgroup.Parse("8:pids:/\n"), CgroupMode.Hybrid);
        Assert.Equal(ErrorKind.NotFound, Assert.Throws<ShimException>(() => watcher.Add("y", noMemory, _ => { })).Kind);

        var cgroup = CgroupFactory.Load(ProcCgroup.Parse($"4:memory:{group.Path}\n"), CgroupMode.Hybrid);
        watcher.Add("c1", cgroup, _ => { });
        Assert.Equal(ErrorKind.AlreadyExists, Assert.Throws<ShimException>(() => watcher.Add("c1", cgroup, _ => { })).Kind);
        Assert.Equal(1, watcher.Count);

        watcher.Dispose();
        Assert.Equal(fdsBefore, CgroupPrereqs.OpenFdCount());
    }
}
