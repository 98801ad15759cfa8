using Containerd.Events;
using Shim.Core.Errors;
using Shim.Core.Events;
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

    private static readonly string[] InitNames = ["created", "restore pending", "running", "pausing", "paused", "stopped", "deleted"];
    private static readonly string[] ExecNames = ["created", "running", "start failed", "stopped", "deleted"];

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
        ArgumentNullException.ThrowIfNull(runcVerb);
        await AssertOutcome(init, op, InitOperation(init, op), outcome, runcVerb);
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
        ArgumentNullException.ThrowIfNull(runcVerb);
        await AssertOutcome(exec, op, ExecOperation(exec, op), outcome, runcVerb);
    }

    public static TheoryData<string, string, string, string, string, string> ConcurrentTable => new()
    {
        // kind, state, first operation (held in runc until the second is waiting), second operation
        //   → the second's outcome (or refusal), runc verbs run in order
        { "init", "created", "delete", "delete", NF, "delete" },
        { "init", "stopped", "delete", "delete", NF, "delete" },
        { "init", "created", "start", "kill", "running", "start kill" },
        { "init", "created", "start", "delete", FP, "start" },
        { "init", "created", "start", "start", FP, "start" },
        { "init", "running", "pause", "pause", FP, "pause" },
        { "init", "running", "pause", "kill", "paused", "pause kill" },
        { "init", "running", "pause", "resume", "running", "pause resume" },
        { "init", "paused", "resume", "pause", "paused", "resume pause" },
        { "init", "running", "checkpoint", "pause", "paused", "checkpoint pause" },
        { "init", "running", "update", "update", "running", "update update" },
        { "exec", "created", "start", "start", FP, "exec" },
        { "exec", "created", "start", "kill", "running", "exec" },
        { "exec", "created", "start", "delete", FP, "exec" },
    };

    /// <summary>
    /// Two operations on one process at once: the second waits for the first (one operation at a time
    /// per process, as containerd's shim holds the process mutex) and then acts on the state the first
    /// left, so two Deletes run one runc delete and a Kill during Start signals the started process.
    /// </summary>
    [Theory]
    [MemberData(nameof(ConcurrentTable))]
    public async Task A_second_operation_waits_for_the_first_and_acts_on_the_state_it_left(string kind, string state, string first, string second, string outcome, string runcVerbs)
    {
        ContainerProcess process;
        Func<string, Task> run;
        if (kind == "init")
        {
            var init = NewInit(state);
            process = init;
            run = op => InitOperation(init, op)();
        }
        else
        {
            var exec = NewExec(state);
            process = exec;
            run = op => ExecOperation(exec, op)();
        }
        _runc.HoldVerb = first == "start" && kind == "exec" ? "exec" : first;

        var one = run(first);
        await _runc.HoldEntered.Task.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        var two = run(second);
        Assert.False(two.IsCompleted, "the second operation waits for the first");
        _runc.Release.SetResult();
        await one.WaitAsync(TimeSpan.FromSeconds(10), Ct);

        ArgumentNullException.ThrowIfNull(runcVerbs);
        await AssertOutcome(process, second, () => two, outcome, runcVerbs);
    }

    [Fact]
    public async Task A_failed_runc_pause_leaves_the_container_running_and_publishes_nothing()
    {
        _runc.FailVerbWith = "pause:cgroup freeze failed";
        var init = NewInit("running");
        var ex = await Assert.ThrowsAsync<RuncException>(() => init.PauseAsync(Ct));
        Assert.Contains("cgroup freeze failed", ex.Message, StringComparison.Ordinal);
        Assert.Same(InitState.Running, init.State);
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
        // what the sequencer's report does, synchronously here: the exit lands while runc runs
        Assert.True(init.RecordExit(new ChildExit(_child!.Pid, 137, DateTimeOffset.UtcNow)));
        init.Events.Exited(init);
        init.CompleteExit();
        _runc.Release.SetResult();
        await operation;
        Assert.Same(InitState.Stopped, init.State);
        Assert.Equal(["TaskExit"], _events.Events.Select(e => e.Descriptor.Name));
    }

    [Fact]
    public async Task A_failed_start_leaves_init_created_and_a_failed_exec_created_with_status_255_and_its_wait_answered()
    {
        _runc.FailVerbWith = "start:hook failed";
        var init = NewInit("created");
        await Assert.ThrowsAsync<RuncException>(() => init.StartAsync(new ExitRouter(), null, Ct));
        Assert.Same(InitState.Created, init.State);

        _runc.FailExec = true;
        var exec = NewExec("created");
        await Assert.ThrowsAnyAsync<Exception>(() => exec.StartAsync(new ExitRouter(), new RuntimeOptions(), Ct));
        Assert.Same(ExecState.StartFailed, exec.State);
        Assert.Equal(TaskStatus.Created, exec.State.Status);
        Assert.Equal(255, exec.ExitStatus);
        Assert.True(exec.Exited.IsCompleted);
    }

    [Fact]
    public void An_exit_moves_every_live_state_to_stopped_and_is_no_news_once_stopped_deleted_or_never_run()
    {
        Assert.Equal(
            ["stopped", "stopped", "stopped", "stopped", "stopped", "-", "-"],
            InitNames.Select(n => InitStateNamed(n).OnExit()?.Name ?? "-"));
        Assert.Equal(
            ["stopped", "stopped", "-", "-", "-"],
            ExecNames.Select(n => ExecStateNamed(n).OnExit()?.Name ?? "-"));
    }

    [Fact]
    public void Only_an_exit_while_paused_or_pausing_resumes_the_container_before_it_is_reported()
    {
        Assert.Equal(
            ["pausing", "paused"],
            InitNames.Where(s => InitStateNamed(s).ResumesOnExit));
    }

    [Fact]
    public void States_report_containerd_statuses()
    {
        Assert.Equal(
            [TaskStatus.Created, TaskStatus.Created, TaskStatus.Running, TaskStatus.Pausing, TaskStatus.Paused, TaskStatus.Stopped, TaskStatus.Stopped],
            InitNames.Select(s => InitStateNamed(s).Status));
    }

    private Func<Task> InitOperation(InitProcess init, string op) => op switch
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

    private static Func<Task> ExecOperation(ExecProcess exec, string op) => op switch
    {
        "start" => () => exec.StartAsync(new ExitRouter(), new RuntimeOptions(), Ct),
        "kill" => () => exec.KillAsync(0, Ct),
        _ => () => exec.DeleteAsync(Ct),
    };

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
            Assert.Equal(outcome, process.CurrentState.Name == "created (its start failed)" ? "start failed" : process.CurrentState.Name);
        }
        Assert.Equal(runcVerb == None ? [] : runcVerb.Split(' '), _runc.Calls.ToArray());
    }

    private InitProcess NewInit(string state)
    {
        var runc = new RuncClient(new RuncConfig("/bin/false", "/nonexistent", "/dev/null"), _runc);
        var stdio = new StdioPaths("", "", "", false);
        var sequencer = new ExitSequencer(new TaskEvents(_events));
        var init = state == "restore pending"
            ? InitProcess.ForRestore("c1", stdio, runc, sequencer, new RestoreSource(Path.Combine(_bundle, "image"), ""))
            : new InitProcess("c1", stdio, runc, sequencer);
        _ = new Container("c1", _bundle, rootfsMounted: false, sharesPidNamespace: false, init) { Stdio = Stdio.TestStdio.Context };
        if (state != "restore pending")
        {
#pragma warning disable CA2000 // the process owns its pidfd from Attach on
            init.Attach(_child!.Pid, PidFd.Open(_child.Pid));
#pragma warning restore CA2000
            init.StartTestIn(InitStateNamed(state));
        }
        return init;
    }

    private ExecProcess NewExec(string state)
    {
        var init = NewInit("running");
        var exec = new ExecProcess(init.Container!, "e1", new StdioPaths("", "", "", false), "{}"u8.ToArray());
        if (state != "created")
        {
#pragma warning disable CA2000 // the process owns its pidfd from Attach on
            exec.Attach(_child!.Pid, PidFd.Open(_child.Pid));
#pragma warning restore CA2000
            exec.StartTestIn(ExecStateNamed(state));
        }
        return exec;
    }

    private static InitState InitStateNamed(string name) => name switch
    {
        "created" => InitState.Created,
        "restore pending" => InitState.RestorePending,
        "running" => InitState.Running,
        "pausing" => InitState.Pausing,
        "paused" => InitState.Paused,
        "stopped" => InitState.Stopped,
        "deleted" => InitState.Deleted,
        _ => throw new ArgumentException(name),
    };

    private static ExecState ExecStateNamed(string name) => name switch
    {
        "created" => ExecState.Created,
        "running" => ExecState.Running,
        "start failed" => ExecState.StartFailed,
        "stopped" => ExecState.Stopped,
        "deleted" => ExecState.Deleted,
        _ => throw new ArgumentException(name),
    };
}
