using Containerd.Events;
using Shim.Core.Errors;
using Shim.Core.Options;
using Shim.Core.Processes;
using Shim.Core.Stdio;
using Shim.Core.Tests.Service;
using Shim.Os;
using Shim.Runc;
using TaskStatus = Containerd.Types.Task.Status;

namespace Shim.Core.Tests.Processes;

/// <summary>
/// The transition graph as a table: a real init or exec process is put in a state, the operation
/// runs through the fake runc, and the resulting state (or the kind of the refusal) and the runc
/// call it made are compared with the row. The container's process is a real `sleep` child; kill
/// sends it signal 0, so the table never ends it.
/// </summary>
public sealed class ProcessStateTests : IAsyncLifetime
{
    private const string FP = "FailedPrecondition", NF = "NotFound", None = "-";

    private readonly FakeRunner _runc = new();
    private readonly RecordingPublisher _events = new();
    private readonly string _bundle = Directory.CreateTempSubdirectory("rcs-states-").FullName;
    private ChildProcess? _child;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public ValueTask InitializeAsync()
    {
        Reaper.Instance.Start();
        _child = Reaper.Instance.Spawn(new SpawnOptions { Path = "/bin/sleep", Args = ["sleep", "1000"] });
        _runc.Pids["c1"] = _child.Pid;
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (int pid in _runc.Pids.Values.Concat(_runc.ExecPids).Append(_child!.Pid))
        {
            Signals.Kill(pid, Signals.SIGKILL);
        }
        await _child.Exited.WaitAsync(TimeSpan.FromSeconds(10));
        Directory.Delete(_bundle, recursive: true);
    }

    public static TheoryData<string, string, string, string> InitTable => new()
    {
        // state, operation → resulting state or refusal, runc verb run ("-": none)
        { "created", "start", "running", "start" },
        { "created", "kill", "created", "kill" },
        { "created", "delete", "deleted", "delete" },
        { "created", "pause", FP, None },
        { "created", "resume", FP, None },
        { "created", "update", "created", "update" },
        { "created", "checkpoint", FP, None },
        { "created", "exec in", "created", None },

        { "restore pending", "start", "running", "restore" },
        { "restore pending", "kill", NF, None },
        { "restore pending", "delete", "deleted", "delete" },
        { "restore pending", "pause", FP, None },
        { "restore pending", "resume", FP, None },
        { "restore pending", "update", FP, None },
        { "restore pending", "checkpoint", FP, None },
        { "restore pending", "exec in", FP, None },

        { "running", "start", FP, None },
        { "running", "kill", "running", "kill" },
        { "running", "delete", FP, None },
        { "running", "pause", "paused", "pause" },
        { "running", "resume", FP, None },
        { "running", "update", "running", "update" },
        { "running", "checkpoint", "running", "checkpoint" },
        { "running", "exec in", "running", None },

        { "pausing", "start", FP, None },
        { "pausing", "kill", "pausing", "kill" },
        { "pausing", "delete", FP, None },
        { "pausing", "pause", FP, None },
        { "pausing", "resume", FP, None },
        { "pausing", "update", FP, None },
        { "pausing", "checkpoint", FP, None },
        { "pausing", "exec in", FP, None },

        { "paused", "start", FP, None },
        { "paused", "kill", "paused", "kill" },
        { "paused", "delete", FP, None },
        { "paused", "pause", FP, None },
        { "paused", "resume", "running", "resume" },
        { "paused", "update", "paused", "update" },
        { "paused", "checkpoint", "paused", "checkpoint" },
        { "paused", "exec in", FP, None },

        { "stopped", "start", FP, None },
        { "stopped", "kill", NF, None },
        { "stopped", "delete", "deleted", "delete" },
        { "stopped", "pause", FP, None },
        { "stopped", "resume", FP, None },
        { "stopped", "update", FP, None },
        { "stopped", "checkpoint", FP, None },
        { "stopped", "exec in", FP, None },

        { "deleted", "start", NF, None },
        { "deleted", "kill", NF, None },
        { "deleted", "delete", NF, None },
        { "deleted", "pause", NF, None },
        { "deleted", "resume", NF, None },
        { "deleted", "update", NF, None },
        { "deleted", "checkpoint", NF, None },
        { "deleted", "exec in", NF, None },
    };

    [Theory]
    [MemberData(nameof(InitTable))]
    public async Task Each_init_state_performs_or_refuses_each_operation(string state, string op, string outcome, string runcVerb)
    {
        var init = NewInit(state);
        Func<Task> operation = op switch
        {
            "start" => () => init.StartAsync(new ExitRouter(), beforeStartEvent: null, Ct),
            "kill" => () => init.KillAsync(0, all: false, Ct),
            "delete" => () => init.DeleteAsync(Ct),
            "pause" => () => init.PauseAsync(Ct),
            "resume" => () => init.ResumeAsync(Ct),
            "update" => () => init.UpdateAsync("{}"u8.ToArray(), Ct),
            "checkpoint" => () => init.CheckpointAsync(Path.Combine(_bundle, "image"), new CheckpointRequestOptions(), Ct),
            _ => () => { init.ReserveExec("e1"); return Task.CompletedTask; },
        };
        await AssertOutcome(init, op, operation, outcome, runcVerb);
    }

    public static TheoryData<string, string, string, string> ExecTable => new()
    {
        // state, operation → resulting state or refusal, runc verb run ("-": none)
        { "created", "start", "running", "exec" },
        { "created", "kill", FP, None },
        { "created", "delete", "deleted", None },
        { "running", "start", FP, None },
        { "running", "kill", "running", None },
        { "running", "delete", FP, None },
        { "start failed", "start", FP, None },
        { "start failed", "kill", FP, None },
        { "start failed", "delete", "deleted", None },
        { "stopped", "start", FP, None },
        { "stopped", "kill", NF, None },
        { "stopped", "delete", "deleted", None },
        { "deleted", "start", NF, None },
        { "deleted", "kill", NF, None },
        { "deleted", "delete", NF, None },
    };

    [Theory]
    [MemberData(nameof(ExecTable))]
    public async Task Each_exec_state_performs_or_refuses_each_operation(string state, string op, string outcome, string runcVerb)
    {
        var exec = NewExec(state);
        Func<Task> operation = op switch
        {
            "start" => () => exec.StartAsync(new ExitRouter(), new RuntimeOptions(), Ct),
            "kill" => () => exec.KillAsync(0, Ct),
            _ => () => exec.DeleteAsync(Ct),
        };
        await AssertOutcome(exec, op, operation, outcome, runcVerb);
    }

    [Fact]
    public async Task A_failed_runc_pause_leaves_the_container_running_and_publishes_nothing()
    {
        _runc.FailVerbWith = "pause:cgroup freeze failed";
        var init = NewInit("running");
        var ex = await Assert.ThrowsAsync<RuncException>(() => init.PauseAsync(Ct));
        Assert.Contains("cgroup freeze failed", ex.Message, StringComparison.Ordinal);
        Assert.Same(RunningState.Instance, init.State);
        Assert.DoesNotContain(_events.Events, e => e is TaskPaused);
    }

    [Fact]
    public async Task Pause_and_resume_publish_their_events_in_order()
    {
        var init = NewInit("running");
        await init.PauseAsync(Ct);
        await init.ResumeAsync(Ct);
        Assert.Equal(["TaskPaused", "TaskResumed"], _events.Events.Select(e => e.Descriptor.Name));
    }

    [Theory]
    [InlineData("pause")]
    [InlineData("resume")]
    public async Task An_exit_while_runc_pause_or_resume_runs_is_not_undone_when_it_returns(string verb)
    {
        _runc.HoldVerb = verb;
        var init = NewInit(verb == "pause" ? "running" : "paused");
        var operation = verb == "pause" ? init.PauseAsync(Ct) : init.ResumeAsync(Ct);
        await _runc.HoldEntered.Task.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.Equal(verb == "pause" ? TaskStatus.Pausing : TaskStatus.Paused, init.State.Status);
        init.Report(new ChildExit(_child!.Pid, 137, DateTimeOffset.UtcNow));
        _runc.Release.SetResult();
        await operation;
        Assert.Same(StoppedState.Instance, init.State);
        Assert.Equal(["TaskExit"], _events.Events.Select(e => e.Descriptor.Name));
    }

    [Fact]
    public async Task A_failed_start_leaves_init_created_and_a_failed_exec_created_with_status_255_and_its_wait_answered()
    {
        _runc.FailVerbWith = "start:hook failed";
        var init = NewInit("created");
        await Assert.ThrowsAsync<RuncException>(() => init.StartAsync(new ExitRouter(), null, Ct));
        Assert.Same(CreatedState.Instance, init.State);

        _runc.FailExec = true;
        var exec = NewExec("created");
        await Assert.ThrowsAnyAsync<Exception>(() => exec.StartAsync(new ExitRouter(), new RuntimeOptions(), Ct));
        Assert.Same(StartFailedState.Instance, exec.State);
        Assert.Equal(TaskStatus.Created, exec.State.Status);
        Assert.Equal(255, exec.ExitStatus);
        Assert.True(exec.Exited.IsCompleted);
    }

    [Fact]
    public void An_exit_moves_every_live_state_to_stopped_and_leaves_stopped_and_deleted()
    {
        Assert.Same(StoppedState.Instance, CreatedState.Instance.OnExit());
        Assert.Same(StoppedState.Instance, RestorePendingState.Instance.OnExit());
        Assert.Same(StoppedState.Instance, RunningState.Instance.OnExit());
        Assert.Same(StoppedState.Instance, PausingState.Instance.OnExit());
        Assert.Same(StoppedState.Instance, PausedState.Instance.OnExit());
        Assert.Same(StoppedState.Instance, StoppedState.Instance.OnExit());
        Assert.Same(DeletedState.Instance, DeletedState.Instance.OnExit());
    }

    [Fact]
    public void Only_an_exit_while_paused_or_pausing_resumes_the_container_before_it_is_reported()
    {
        Assert.Equal(
            ["pausing", "paused"],
            new[] { "created", "restore pending", "running", "pausing", "paused", "stopped", "deleted" }.Where(s => State(s).ResumesOnExit));
    }

    [Fact]
    public void States_report_containerd_statuses()
    {
        Assert.Equal(
            [TaskStatus.Created, TaskStatus.Created, TaskStatus.Running, TaskStatus.Pausing, TaskStatus.Paused, TaskStatus.Stopped, TaskStatus.Stopped],
            new[] { "created", "restore pending", "running", "pausing", "paused", "stopped", "deleted" }.Select(s => State(s).Status));
    }

    private async Task AssertOutcome(ContainerProcess process, string op, Func<Task> operation, string outcome, string runcVerb)
    {
        if (outcome is FP or NF)
        {
            var ex = await Assert.ThrowsAsync<ShimException>(operation);
            Assert.Equal(outcome == FP ? ErrorKind.FailedPrecondition : ErrorKind.NotFound, ex.Kind);
            Assert.StartsWith($"cannot {op} ", ex.Message, StringComparison.Ordinal);
        }
        else
        {
            await operation();
            Assert.Same(State(outcome), process.State);
        }
        Assert.Equal(runcVerb == None ? [] : [runcVerb], _runc.Calls.ToArray());
    }

    private InitProcess NewInit(string state)
    {
        var runc = new RuncClient(new RuncConfig("/bin/false", "/nonexistent", "/dev/null"), _runc);
        var stdio = new StdioPaths("", "", "", false);
        var sequencer = new ExitSequencer(_events);
        var init = state == "restore pending"
            ? InitProcess.ForRestore("c1", stdio, runc, _events, sequencer, new RestoreSource(Path.Combine(_bundle, "image"), ""))
            : new InitProcess("c1", stdio, runc, _events, sequencer);
        init.Container = new Container("c1", _bundle, rootfsMounted: false, sharesPidNamespace: false, init) { Stdio = Stdio.TestStdio.Context };
        if (state != "restore pending")
        {
            init.Attach(_child!.Pid, PidFd.Open(_child.Pid));
            init.Become(State(state));
        }
        return init;
    }

    private ExecProcess NewExec(string state)
    {
        var init = NewInit("running");
        var exec = new ExecProcess(init.Container!, "e1", new StdioPaths("", "", "", false), "{}"u8.ToArray(), _events);
        if (state != "created")
        {
            exec.Attach(_child!.Pid, PidFd.Open(_child.Pid));
            exec.Become(State(state));
        }
        return exec;
    }

    private static ProcessState State(string name) => name switch
    {
        "created" => CreatedState.Instance,
        "restore pending" => RestorePendingState.Instance,
        "running" => RunningState.Instance,
        "pausing" => PausingState.Instance,
        "paused" => PausedState.Instance,
        "stopped" => StoppedState.Instance,
        "start failed" => StartFailedState.Instance,
        "deleted" => DeletedState.Instance,
        _ => throw new ArgumentException(name),
    };
}
