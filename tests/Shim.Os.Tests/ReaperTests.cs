using System.Runtime.InteropServices;
using Shim.Os.Tests.Support;

namespace Shim.Os.Tests;

[Collection(ProcessCollection.Name)]
public sealed class ReaperTests
{
    [Fact]
    public void Starting_the_reaper_makes_this_process_a_child_subreaper()
    {
        Reaper.Instance.Start();
        Reaper.Instance.Start();
        Assert.True(ProcessInfo.IsChildSubreaper());
    }

    [Fact]
    public async Task A_subscription_sees_the_exit_of_an_orphaned_grandchild()
    {
        Reaper.Instance.Start();
        using var exits = Reaper.Instance.Subscribe();
        var (read, write) = Pipes.Create();
        ChildProcess child;
        using (read)
        {
            using (write)
            {
                // The grandchild's stdout goes to /dev/null so the pipe closes when sh exits.
                child = Children.Sh("sleep 0.2 >/dev/null & echo $!; exit 0",
                    new Dictionary<int, SafeHandle> { [1] = write });
            }
            int grandchild = int.Parse((await TestIo.ReadAllTextAsync(read)).Trim());

            var seen = new Dictionary<int, int>();
            while (!seen.ContainsKey(child.Pid) || !seen.ContainsKey(grandchild))
            {
                var exit = await exits.Reader.ReadAsync(TestIo.Ct).AsTask().WaitAsync(TestIo.Timeout, TestIo.Ct);
                seen[exit.Pid] = exit.Status;
            }
            Assert.Equal(0, seen[child.Pid]);
            Assert.Equal(0, seen[grandchild]);
            Assert.Equal(0, (await child.Exited).Status);
        }
    }

    [Fact]
    public async Task Two_hundred_concurrent_spawns_are_each_observed_exactly_once()
    {
        using var exits = Reaper.Instance.Subscribe();
        var children = new ChildProcess[200];
        await Parallel.ForAsync(0, children.Length, TestIo.Ct, (i, _) =>
        {
            children[i] = Reaper.Instance.Spawn(new SpawnOptions { Path = "/usr/bin/true", Args = ["true"] });
            return ValueTask.CompletedTask;
        });

        var results = await Task.WhenAll(children.Select(c => c.Exited)).WaitAsync(TestIo.Timeout, TestIo.Ct);
        Assert.All(results, r => Assert.Equal(0, r.Status));

        // Pids may be recycled within the batch, so compare as multisets.
        var expected = children.GroupBy(c => c.Pid).ToDictionary(g => g.Key, g => g.Count());
        var observed = new Dictionary<int, int>();
        int total = 0;
        while (total < children.Length)
        {
            var exit = await exits.Reader.ReadAsync(TestIo.Ct).AsTask().WaitAsync(TestIo.Timeout, TestIo.Ct);
            if (expected.ContainsKey(exit.Pid))
            {
                observed[exit.Pid] = observed.GetValueOrDefault(exit.Pid) + 1;
                total++;
            }
        }
        Assert.Equal(expected.OrderBy(p => p.Key), observed.OrderBy(p => p.Key));
        Assert.DoesNotContain(exits.Drain(), e => expected.ContainsKey(e.Pid));
    }

    [Fact]
    public async Task Drain_returns_queued_exits_without_waiting()
    {
        using var exits = Reaper.Instance.Subscribe();
        Assert.Empty(exits.Drain());
        var child = Children.Sh("exit 3");
        await child.Exited.WaitAsync(TestIo.Timeout, TestIo.Ct);
        var drained = exits.Drain();
        Assert.Contains(new ChildExit(child.Pid, 3, drained.Single(e => e.Pid == child.Pid).ExitedAt), drained);
    }

    [Fact]
    public async Task A_disposed_subscription_receives_nothing_more_and_completes()
    {
        var exits = Reaper.Instance.Subscribe();
        exits.Dispose();
        var child = Children.Sh("exit 0");
        await child.Exited.WaitAsync(TestIo.Timeout, TestIo.Ct);
        Assert.Empty(exits.Drain());
        Assert.True(exits.Reader.Completion.IsCompleted);
    }

    [Fact]
    public async Task The_exited_task_does_not_run_continuations_on_the_reaper_thread()
    {
        var child = Children.Sh("exit 0");
        await child.Exited.WaitAsync(TestIo.Timeout, TestIo.Ct);
        Assert.NotEqual("reaper", Thread.CurrentThread.Name);
    }

    [Fact]
    public async Task Signalling_by_pid_reaches_an_unreaped_child_and_never_a_reaped_one_or_a_stranger()
    {
        var child = Children.Sh("exec sleep 1000");
        Assert.True(Reaper.Instance.SignalChild(child.Pid, Signals.SIGTERM));
        Assert.Equal(128 + Signals.SIGTERM, (await child.Exited.WaitAsync(TestIo.Timeout, TestIo.Ct)).Status);

        // reaped: its number is free for anyone, so nothing is sent
        Assert.False(Reaper.Instance.SignalChild(child.Pid, 0));
        // pid 1 and our own parent exist, but are no children of ours
        Assert.False(Reaper.Instance.SignalChild(1, 0));
        string stat = await File.ReadAllTextAsync("/proc/self/stat", TestIo.Ct);
        int parent = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.False(Reaper.Instance.SignalChild(parent, 0));
    }
}
