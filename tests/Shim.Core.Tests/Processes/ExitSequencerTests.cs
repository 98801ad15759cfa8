using Containerd.Events;
using Google.Protobuf;
using Shim.Core.Errors;
using Shim.Core.Events;
using Shim.Core.Processes;
using Shim.Core.Stdio;
using Shim.Os;

namespace Shim.Core.Tests.Processes;

public class ExitSequencerTests
{
    /// <summary>A process of container "c" whose pre-report step (init: kill-all, resume) the test completes by hand.</summary>
    private sealed class FakeProcess(string execId, ExitSequencer sequencer)
        : ContainerProcess("c", execId, new StdioPaths("", "", "", false), sequencer, execId.Length == 0 ? InitState.Created : ExecState.Created)
    {
        public TaskCompletionSource? Preparing { get; set; }

        internal override Task PrepareExitAsync() => Preparing?.Task ?? Task.CompletedTask;
    }

    /// <summary>Renders what the sequencer published, in order; "|" marks where the steps had a checkpoint.</summary>
    private sealed class Log : IEventPublisher
    {
        public List<string> Lines { get; } = [];

        public void Publish(IMessage evt) => Lines.Add(evt switch
        {
            TaskStart s => "start:" + s.ContainerId,
            TaskExecStarted s => "start:" + s.ExecId,
            TaskExit e => "exit:" + e.Id,
            TaskOOM => "oom",
            _ => evt.Descriptor.Name,
        });

        public Task FlushAsync(TimeSpan timeout) => Task.CompletedTask;
    }

    public static TheoryData<string, string> Orders => new()
    {
        // steps (begin/started/failed/reap:X, "slow" = init's kill-all pending until "killed", "oom" = an OOM waits in the cgroup,
        // "begin:X!" = the start is refused, "|" = checkpoint) → events published
        { "begin:c started:c reap:c", "start:c exit:c" },
        { "begin:c reap:c started:c", "start:c exit:c" },
        { "begin:c reap:c | started:c", "| start:c exit:c" },
        { "begin:c started:c begin:c reap:c started:c", "start:c start:c exit:c" },
        { "begin:c reap:c failed:c", "exit:c" },
        { "begin:c started:c begin:e1 reap:e1 | started:e1", "start:c | start:e1 exit:e1" },
        { "begin:c started:c begin:e1 started:e1 reap:c | reap:e1", "start:c start:e1 | exit:e1 exit:c" },
        { "begin:c started:c begin:e1 reap:c | started:e1 | reap:e1", "start:c | start:e1 | exit:e1 exit:c" },
        { "begin:c started:c begin:e1 reap:c | failed:e1", "start:c | exit:c" },
        { "begin:c started:c reap:c begin:e1!", "start:c exit:c" },
        { "begin:c started:c begin:e1 started:e1 begin:e2 started:e2 reap:c reap:e2 | reap:e1", "start:c start:e1 start:e2 exit:e2 | exit:e1 exit:c" },
        { "begin:c started:c oom reap:c", "start:c oom exit:c" },
        { "begin:c started:c begin:e1 started:e1 oom reap:c reap:e1", "start:c start:e1 exit:e1 oom exit:c" },
        { "slow begin:c started:c reap:c | killed", "start:c | exit:c" },
        { "slow begin:c started:c begin:e1 started:e1 reap:c reap:e1 | killed", "start:c start:e1 exit:e1 | exit:c" },
        { "slow begin:c started:c reap:c begin:e1!", "start:c" },
        { "slow begin:c reap:c started:c | killed", "start:c | exit:c" },
        { "begin:c started:c begin:e1 begin:e1! started:e1 reap:c reap:e1", "start:c start:e1 exit:e1 exit:c" },
    };

    [Theory]
    [MemberData(nameof(Orders))]
    public void Exits_are_published_in_containerd_s_order_whatever_order_they_happen_in(string steps, string expected)
    {
        var log = new Log();
        bool oomPending = false;
        var sequencer = new ExitSequencer(new TaskEvents(log), null, _ =>
        {
            if (oomPending)
            {
                oomPending = false;
                log.Publish(new TaskOOM { ContainerId = "c" });
            }
        });
        var processes = new Dictionary<string, FakeProcess>();
        var attempts = new Dictionary<string, StartAttempt>();
        FakeProcess P(string id) => processes.TryGetValue(id, out var p) ? p : processes[id] = new FakeProcess(id == "c" ? "" : id, sequencer);
        var init = P("c");
        ArgumentNullException.ThrowIfNull(steps);
        foreach (string step in steps.Split(' '))
        {
            string[] parts = step.Split(':');
            switch (parts[0])
            {
                case "slow":
                    init.Preparing = new TaskCompletionSource();
                    break;
                case "killed":
                    init.Preparing!.SetResult();
                    break;
                case "oom":
                    oomPending = true;
                    break;
                case "|":
                    log.Lines.Add("|");
                    break;
                case "begin" when parts[1].EndsWith('!'):
                    var refused = Assert.Throws<ShimException>(() => sequencer.BeginStart(P(parts[1].TrimEnd('!')), router: null));
                    Assert.Equal(ErrorKind.FailedPrecondition, refused.Kind);
                    break;
                case "begin":
                    attempts[parts[1]] = sequencer.BeginStart(P(parts[1]), router: null);
                    break;
                case "started":
                    attempts[parts[1]].Commit();
                    break;
                case "failed":
                    attempts[parts[1]].Dispose();
                    break;
                case "reap":
                    sequencer.Reaped(P(parts[1]), new ChildExit(1000 + processes.Count, 7, DateTimeOffset.UnixEpoch));
                    break;
                default:
                    throw new ArgumentException($"unknown step {step}");
            }
        }
        Assert.Equal(expected, string.Join(' ', log.Lines));
    }

    [Fact]
    public async Task An_exec_whose_start_failed_answers_wait_at_once_without_an_exit_event()
    {
        var log = new Log();
        var sequencer = new ExitSequencer(new TaskEvents(log));
        var exec = new FakeProcess("e1", sequencer);
        sequencer.BeginStart(exec, router: null).Dispose();
        Assert.True(exec.Exited.IsCompletedSuccessfully);
        await exec.WaitAsync(TestContext.Current.CancellationToken);
        Assert.Equal(ContainerProcess.FailedStartStatus, exec.ExitStatus);
        Assert.Same(ExecState.StartFailed, exec.CurrentState);
        Assert.Empty(log.Lines);
    }

    [Fact]
    public void An_exec_refused_because_init_exited_answers_wait_at_once()
    {
        var log = new Log();
        var sequencer = new ExitSequencer(new TaskEvents(log));
        var init = new FakeProcess("", sequencer);
        var exec = new FakeProcess("e1", sequencer);
        sequencer.Reaped(init, new ChildExit(10, 0, DateTimeOffset.UnixEpoch));
        Assert.Throws<ShimException>(() => sequencer.BeginStart(exec, router: null));
        Assert.True(exec.Exited.IsCompletedSuccessfully);
        Assert.Same(ExecState.StartFailed, exec.CurrentState); // CREATED, as containerd's shim leaves it
        Assert.Equal(["exit:c"], log.Lines);
    }

    [Fact]
    public void The_oom_drain_before_init_s_exit_is_given_its_status_and_may_publish_ahead_of_it()
    {
        var log = new Log();
        var drained = new List<int>();
        var sequencer = new ExitSequencer(new TaskEvents(log), null, exit =>
        {
            drained.Add(exit.Status);
            if (exit.Status == 137)
            {
                log.Publish(new TaskOOM { ContainerId = "c" });   // a kill only the exit status attributes
            }
        });
        var init = new FakeProcess("", sequencer);
        var exec = new FakeProcess("e1", sequencer);
        sequencer.BeginStart(exec, router: null).Commit();
        sequencer.Reaped(exec, new ChildExit(11, 137, DateTimeOffset.UnixEpoch));   // an exec's exit is no init exit
        sequencer.Reaped(init, new ChildExit(10, 137, DateTimeOffset.UnixEpoch));
        Assert.Equal([137], drained);
        Assert.Equal(["start:e1", "exit:e1", "oom", "exit:c"], log.Lines);
    }

    [Fact]
    public void A_reported_exit_moves_the_process_to_stopped_with_its_status()
    {
        var log = new Log();
        var sequencer = new ExitSequencer(new TaskEvents(log));
        var init = new FakeProcess("", sequencer);
        sequencer.Reaped(init, new ChildExit(10, 3, DateTimeOffset.UnixEpoch.AddSeconds(5)));
        Assert.Same(InitState.Stopped, init.CurrentState);
        Assert.Equal(3, init.ExitStatus);
        Assert.Equal(DateTimeOffset.UnixEpoch.AddSeconds(5), init.ExitedAt);
        Assert.True(init.Exited.IsCompletedSuccessfully);
    }
}
