using Shim.Core.Cgroups;
using Shim.Core.Errors;
using Shim.Os;
using Shim.Os.Io;
using Shim.Os.Notify;

namespace Shim.Core.Tests.Cgroups;

/// <summary>The v2 watcher with a real inotify on fixture files the test rewrites (this machine mounts v1).</summary>
[Collection(CgroupCollection.Name)]
public sealed class OomWatcherV2Tests : IDisposable
{
    private const string Events0 = "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n";

    private readonly FixtureTree _tree = new();
    private readonly OomWatcher _watcher = new(IoLoop.Shared);
    private readonly List<(string Id, int Thread)> _reports = [];
    private readonly List<Exception> _loopFailures = [];

    public OomWatcherV2Tests()
    {
        IoLoop.Shared.CallbackFailed += OnLoopFailure;
    }

    public void Dispose()
    {
        IoLoop.Shared.CallbackFailed -= OnLoopFailure;
        _watcher.Dispose();
        _tree.Dispose();
    }

    [Fact]
    public async Task Each_rise_of_oom_kill_is_one_report_and_oom_alone_is_none()
    {
        Add("c1", "c1");

        WriteEvents("c1", oom: 1, oomKill: 1);
        await WaitForReports(1);

        WriteEvents("c1", oom: 3, oomKill: 3);   // jumped by two between reads: one report
        await WaitForReports(2);

        long batches = _watcher.InotifyBatches;
        WriteEvents("c1", oom: 7, oomKill: 3);   // oom without a kill (e.g. a pod-level OOM elsewhere)
        await CgroupPrereqs.WaitUntil(() => _watcher.InotifyBatches > batches, "the change to be read");
        _watcher.Drain("c1");
        Assert.Equal(2, ReportCount());
        Assert.All(Reports(), r => Assert.Equal("c1", r.Id));
        Assert.Empty(_loopFailures);
    }

    [Fact]
    public async Task A_baseline_present_at_add_is_not_reported()
    {
        WriteEvents("c1", oom: 2, oomKill: 2);
        Add("c1", "c1");
        _watcher.Drain("c1");
        Assert.Equal(0, ReportCount());

        WriteEvents("c1", oom: 3, oomKill: 3);
        await WaitForReports(1);
    }

    [Fact]
    public async Task Deleting_the_cgroup_removes_the_watch_without_a_report_or_an_error()
    {
        int fds = CgroupPrereqs.OpenFdCount();
        Add("c1", "c1");
        Assert.Equal(2, InotifyWatchCount());

        File.Delete(_tree.PathOf("cg/c1/memory.events"));
        File.Delete(_tree.PathOf("cg/c1/cgroup.events"));
        Directory.Delete(_tree.PathOf("cg/c1"));

        await CgroupPrereqs.WaitUntil(() => _watcher.Count == 0, "the watch to remove itself");
        Assert.Equal(0, InotifyWatchCount());
        Assert.Equal(0, ReportCount());
        Assert.Empty(_loopFailures);
        _watcher.Remove("c1");   // no-op now
        _watcher.Drain("c1");    // no-op too
        _watcher.Dispose();
        Assert.Equal(fds, CgroupPrereqs.OpenFdCount());
    }

    [Fact]
    public void A_kill_the_cgroup_went_with_is_reported_from_the_parent_at_a_SIGKILL_exit_before_the_loop_reads_it()
    {
        WriteParent(oomKill: 3);   // kills of other containers before this one was added
        Add("c1", "pod/c1");
        using var blocked = BlockLoop();

        // the kernel counts the kill in the cgroup and its ancestors, then systemd removes the scope
        // before anything read it (the deferred memory.events notification went with it)
        WriteParent(oomKill: 4);
        WriteEvents("pod/c1", oom: 1, oomKill: 1);
        RemoveCgroup("pod/c1");

        Assert.True(_watcher.Drain("c1", 137));
        var report = Assert.Single(Reports());
        Assert.Equal(("c1", Environment.CurrentManagedThreadId), report);
        Assert.Equal(0, _watcher.Count);
    }

    [Fact]
    public async Task A_kill_the_loop_found_only_in_the_parent_waits_for_the_init_s_exit()
    {
        WriteParent(oomKill: 0);
        Add("c1", "pod/c1");
        long batches = _watcher.InotifyBatches;
        WriteParent(oomKill: 1);
        RemoveCgroup("pod/c1");

        await CgroupPrereqs.WaitUntil(() => _watcher.InotifyBatches > batches, "the loop to find the cgroup gone");
        Assert.Equal(0, InotifyWatchCount());
        Assert.Equal(1, _watcher.Count);   // kept for the exit status
        Assert.Equal(0, ReportCount());

        Assert.True(_watcher.Drain("c1", 137));
        Assert.Equal(1, ReportCount());
        Assert.Equal(0, _watcher.Count);
        Assert.Empty(_loopFailures);
    }

    [Theory]
    [InlineData(0)]     // exited by itself
    [InlineData(143)]   // SIGTERM
    [InlineData(139)]   // SIGSEGV
    public void A_rise_of_the_parent_is_not_claimed_by_an_init_that_was_not_SIGKILLed(int status)
    {
        WriteParent(oomKill: 0);
        Add("c1", "pod/c1");
        using var blocked = BlockLoop();
        WriteParent(oomKill: 1);   // a sibling's kill, as far as anyone can tell
        RemoveCgroup("pod/c1");

        Assert.False(_watcher.Drain("c1", status));
        Assert.Equal(0, ReportCount());
        Assert.Equal(0, _watcher.Count);
    }

    [Fact]
    public void A_sibling_s_kill_before_the_last_read_is_not_attributed_to_a_SIGKILLed_init()
    {
        WriteParent(oomKill: 0);
        Add("c1", "pod/c1");
        using var blocked = BlockLoop();
        WriteParent(oomKill: 1);   // a sibling OOM-killed while c1 ran
        _watcher.Drain("c1");      // c1 read again (any change of its own files)
        RemoveCgroup("pod/c1");    // SIGKILLed by someone; systemd removes the scope at once

        _watcher.Drain("c1", 137);
        Assert.Equal(0, ReportCount());
        Assert.Equal(0, _watcher.Count);
    }

    [Fact]
    public void An_init_the_shim_SIGKILLed_claims_no_kill_from_the_parent()
    {
        WriteParent(oomKill: 0);
        Add("c1", "pod/c1");
        using var blocked = BlockLoop();
        _watcher.BeforeSignal("c1", 9);   // ctr task kill -s KILL
        WriteParent(oomKill: 1);          // a sibling OOM-killed meanwhile
        RemoveCgroup("pod/c1");

        _watcher.Drain("c1", 137);
        Assert.Equal(0, ReportCount());
        Assert.Equal(0, _watcher.Count);
    }

    [Fact]
    public void The_read_before_a_signal_reports_a_kill_the_loop_has_not_read_yet()
    {
        WriteParent(oomKill: 0);
        Add("c1", "pod/c1");
        using var blocked = BlockLoop();
        WriteParent(oomKill: 1);
        WriteEvents("pod/c1", oom: 1, oomKill: 1);

        _watcher.BeforeSignal("c1", 15);
        Assert.Equal(("c1", Environment.CurrentManagedThreadId), Assert.Single(Reports()));
    }

    [Fact]
    public void A_container_whose_OOM_was_reported_claims_no_second_one_from_the_parent()
    {
        WriteParent(oomKill: 0);
        Add("c1", "pod/c1");
        using var blocked = BlockLoop();
        WriteParent(oomKill: 1);
        WriteEvents("pod/c1", oom: 1, oomKill: 1);
        _watcher.Drain("c1");
        Assert.Equal(1, ReportCount());

        WriteParent(oomKill: 2);   // a sibling OOM-killed at the same time
        RemoveCgroup("pod/c1");
        _watcher.Drain("c1", 137);
        Assert.Equal(1, ReportCount());
        Assert.Equal(0, _watcher.Count);
    }

    [Fact]
    public async Task A_kill_read_from_the_cgroup_itself_is_not_reported_again_from_the_parent()
    {
        WriteParent(oomKill: 0);
        Add("c1", "pod/c1");
        WriteParent(oomKill: 1);   // the parent before the cgroup: the loop may read as soon as the cgroup's file changes
        WriteEvents("pod/c1", oom: 1, oomKill: 1);
        await WaitForReports(1);

        using var blocked = BlockLoop();
        RemoveCgroup("pod/c1");
        _watcher.Drain("c1", 137);
        Assert.Equal(1, ReportCount());
    }

    [Fact]
    public void A_kill_read_while_the_parent_could_not_be_read_still_counts_against_the_parent()
    {
        WriteParent(oomKill: 0);
        Add("c1", "pod/c1");
        using var blocked = BlockLoop();
        File.Move(_tree.PathOf("cg/pod/memory.events"), _tree.PathOf("cg/pod/memory.events.away"));
        WriteEvents("pod/c1", oom: 1, oomKill: 1);
        _watcher.Drain("c1");   // reported from the cgroup; no pair with the parent this time
        Assert.Equal(1, ReportCount());

        File.Move(_tree.PathOf("cg/pod/memory.events.away"), _tree.PathOf("cg/pod/memory.events"));
        WriteParent(oomKill: 1);   // the same kill
        RemoveCgroup("pod/c1");
        _watcher.Drain("c1", 137);
        Assert.Equal(1, ReportCount());
    }

    [Fact]
    public void A_cgroup_without_a_readable_parent_reports_nothing_once_gone()
    {
        Add("c1", "c1");   // under the mount root, which has no memory.events
        using var blocked = BlockLoop();
        WriteEvents("c1", oom: 1, oomKill: 1);
        RemoveCgroup("c1");

        _watcher.Drain("c1", 137);
        Assert.Equal(0, ReportCount());
        Assert.Equal(0, _watcher.Count);
    }

    [Fact]
    public void A_kill_and_exit_landing_while_the_cgroup_is_read_are_seen_before_it_counts_as_emptied()
    {
        WriteParent(oomKill: 0);
        Add("c1", "pod/c1");
        using var blocked = BlockLoop();
        bool armed = true;
        _watcher.BeforeRead = path =>
        {
            if (armed && path.EndsWith("cgroup.events", StringComparison.Ordinal))
            {
                // the OOM kill and the init's exit happen right now, in the middle of one poll
                armed = false;
                WriteParent(oomKill: 1);
                WriteEvents("pod/c1", oom: 1, oomKill: 1);
                _tree.Write("cg/pod/c1/cgroup.events", "populated 0\nfrozen 0\n");
            }
        };

        Assert.False(_watcher.Drain("c1", 137));   // read from the cgroup itself, not from the parent
        Assert.False(armed);
        Assert.Equal(1, ReportCount());
        Assert.Equal(0, _watcher.Count);
    }

    [Fact]
    public async Task An_emptied_cgroup_is_read_once_more_then_dropped()
    {
        Add("c1", "c1");
        WriteEvents("c1", oom: 1, oomKill: 1);
        _tree.Write("cg/c1/cgroup.events", "populated 0\nfrozen 0\n");

        await CgroupPrereqs.WaitUntil(() => _watcher.Count == 0, "the watch to remove itself");
        Assert.Equal(1, ReportCount());
        Assert.Equal(0, InotifyWatchCount());
    }

    [Fact]
    public async Task Drain_reports_a_kill_the_loop_has_not_read_yet_and_the_loop_does_not_repeat_it()
    {
        Add("c1", "c1");
        using var blocked = BlockLoop();

        WriteEvents("c1", oom: 1, oomKill: 1);   // inotify has the event queued; the loop cannot read it
        long batches = _watcher.InotifyBatches;
        _watcher.Drain("c1");

        var report = Assert.Single(Reports());
        Assert.Equal(Environment.CurrentManagedThreadId, report.Thread);   // reported by Drain itself

        blocked.Dispose();
        await CgroupPrereqs.WaitUntil(() => _watcher.InotifyBatches > batches, "the loop to read the queued event");
        Assert.Equal(1, ReportCount());
    }

    [Fact]
    public async Task Containers_are_reported_separately_on_one_inotify_instance()
    {
        int fds = CgroupPrereqs.OpenFdCount();
        Add("a", "ca");
        Add("b", "cb");
        Assert.Equal(fds + 1, CgroupPrereqs.OpenFdCount());   // one inotify fd for both
        Assert.Equal(4, InotifyWatchCount());

        WriteEvents("cb", oom: 1, oomKill: 1);
        await WaitForReports(1);
        Assert.Equal("b", Reports()[0].Id);

        _watcher.Remove("b");
        Assert.Equal(2, InotifyWatchCount());
        WriteEvents("ca", oom: 1, oomKill: 1);
        await WaitForReports(2);
        Assert.Equal("a", Reports()[1].Id);

        _watcher.Remove("a");
        Assert.Equal(0, InotifyWatchCount());
        Assert.Equal(0, _watcher.Count);
        _watcher.Dispose();
        Assert.Equal(fds, CgroupPrereqs.OpenFdCount());
    }

    [Fact]
    public void Adding_a_missing_cgroup_is_not_found_and_a_duplicate_id_already_exists()
    {
        var missing = Assert.Throws<ShimException>(() => _watcher.Add("x", new Shim.Core.Cgroups.CgroupV2("/nope", _tree.PathOf("cg")), _ => { }));
        Assert.Equal(ErrorKind.NotFound, missing.Kind);
        Assert.Equal(0, _watcher.Count);

        Add("c1", "c1");
        var duplicate = Assert.Throws<ShimException>(() => Add("c1", "c1"));
        Assert.Equal(ErrorKind.AlreadyExists, duplicate.Kind);
        Assert.Equal(2, InotifyWatchCount());
    }

    private void Add(string id, string directory)
    {
        if (!File.Exists(_tree.PathOf($"cg/{directory}/memory.events")))
        {
            _tree.Write($"cg/{directory}/memory.events", Events0);
            _tree.Write($"cg/{directory}/cgroup.events", "populated 1\nfrozen 0\n");
        }
        _watcher.Add(id, new Shim.Core.Cgroups.CgroupV2("/" + directory, _tree.PathOf("cg")), reported =>
        {
            lock (_reports)
            {
                _reports.Add((reported, Environment.CurrentManagedThreadId));
            }
        });
    }

    private void WriteParent(int oomKill) =>
        _tree.Write("cg/pod/memory.events", $"low 0\nhigh 0\nmax {oomKill}\noom {oomKill}\noom_kill {oomKill}\noom_group_kill 0\n");

    /// <summary>What rmdir of a cgroup leaves: nothing of its directory.</summary>
    private void RemoveCgroup(string directory) => Directory.Delete(_tree.PathOf($"cg/{directory}"), recursive: true);

    private void WriteEvents(string directory, int oom, int oomKill) =>
        _tree.Write($"cg/{directory}/memory.events", $"low 0\nhigh 0\nmax {oom}\noom {oom}\noom_kill {oomKill}\noom_group_kill 0\n");

    private (string Id, int Thread)[] Reports()
    {
        lock (_reports)
        {
            return [.. _reports];
        }
    }

    private int ReportCount() => Reports().Length;

    private Task WaitForReports(int count) => CgroupPrereqs.WaitUntil(() => ReportCount() >= count, $"{count} report(s)");

    private void OnLoopFailure(Exception ex)
    {
        lock (_loopFailures)
        {
            _loopFailures.Add(ex);
        }
    }

    /// <summary>Number of inotify watches held by this process (fdinfo lists one "inotify wd:" line per watch).</summary>
    private static int InotifyWatchCount()
    {
        int count = 0;
        foreach (var fd in Directory.GetFileSystemEntries("/proc/self/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget == "anon_inode:inotify")
                {
                    count += File.ReadLines($"/proc/self/fdinfo/{Path.GetFileName(fd)}").Count(l => l.StartsWith("inotify wd:", StringComparison.Ordinal));
                }
            }
            catch (IOException)
            {
            }
        }
        return count;
    }

    /// <summary>Parks the shared loop thread in a callback until disposed.</summary>
    private static Unblock BlockLoop()
    {
#pragma warning disable CA2000 // owned by the disposable BlockLoop returns
        var entered = new ManualResetEventSlim();
#pragma warning restore CA2000
#pragma warning disable CA2000 // owned by the disposable BlockLoop returns
        var release = new ManualResetEventSlim();
#pragma warning restore CA2000
#pragma warning disable CA2000 // owned by the disposable BlockLoop returns
        var fd = EventFd.Create();
#pragma warning restore CA2000
        var watch = IoLoop.Shared.Watch(fd, () =>
        {
            entered.Set();
            release.Wait(TimeSpan.FromSeconds(20));
        });
        EventFd.Write(fd, 1);
        Assert.True(entered.Wait(TimeSpan.FromSeconds(20)), "the loop did not enter the blocking callback");
        return new Unblock(() =>
        {
            release.Set();
            IoLoop.Shared.Unwatch(watch);
            fd.Dispose();
        });
    }

    private sealed class Unblock(Action action) : IDisposable
    {
        private Action? _action = action;

        public void Dispose() => Interlocked.Exchange(ref _action, null)?.Invoke();
    }
}
