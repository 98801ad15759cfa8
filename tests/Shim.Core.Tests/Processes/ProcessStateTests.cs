using Shim.Core.Errors;
using Shim.Core.Processes;
using TaskStatus = Containerd.Types.Task.Status;

namespace Shim.Core.Tests.Processes;

public class ProcessStateTests
{
    public static TheoryData<string, string, ErrorKind?> Table => new()
    {
        // state, operation, expected failure (null = allowed)
        { "created", "start", null }, { "created", "kill", null }, { "created", "delete", null },
        { "running", "start", ErrorKind.FailedPrecondition }, { "running", "kill", null }, { "running", "delete", ErrorKind.FailedPrecondition },
        { "stopped", "start", ErrorKind.FailedPrecondition }, { "stopped", "kill", ErrorKind.NotFound }, { "stopped", "delete", null },
        { "deleted", "start", ErrorKind.NotFound }, { "deleted", "kill", ErrorKind.NotFound }, { "deleted", "delete", ErrorKind.NotFound },
        { "pausing", "start", ErrorKind.FailedPrecondition }, { "pausing", "kill", null }, { "pausing", "delete", ErrorKind.FailedPrecondition },
        { "paused", "start", ErrorKind.FailedPrecondition }, { "paused", "kill", null }, { "paused", "delete", ErrorKind.FailedPrecondition },
        { "running", "pause", null }, { "paused", "pause", ErrorKind.FailedPrecondition }, { "created", "pause", ErrorKind.FailedPrecondition },
        { "paused", "resume", null }, { "running", "resume", ErrorKind.FailedPrecondition }, { "stopped", "resume", ErrorKind.FailedPrecondition },
        { "created", "exec in", null }, { "running", "exec in", null }, { "paused", "exec in", ErrorKind.FailedPrecondition }, { "stopped", "exec in", ErrorKind.FailedPrecondition },
        { "paused", "update", null }, { "stopped", "update", ErrorKind.FailedPrecondition },
    };

    [Theory]
    [MemberData(nameof(Table))]
    public void Each_state_allows_or_refuses_each_operation_with_the_right_kind(string state, string op, ErrorKind? expected)
    {
        var s = State(state);
        Action check = op switch
        {
            "start" => s.CheckStart,
            "kill" => () => s.CheckKill(isExec: false),
            "pause" => () => s.BeginPause(),
            "resume" => s.CheckResume,
            "delete" => s.CheckDelete,
            "exec in" => s.CheckExec,
            _ => s.CheckUpdate,
        };
        if (expected is null)
        {
            check();
            return;
        }
        var ex = Assert.Throws<ShimException>(check);
        Assert.Equal(expected, ex.Kind);
        Assert.Contains(op, ex.Message, StringComparison.Ordinal);
        Assert.Contains(state, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_exec_that_never_started_cannot_be_signalled()
    {
        Assert.Equal(ErrorKind.FailedPrecondition, Assert.Throws<ShimException>(() => CreatedState.Instance.CheckKill(isExec: true)).Kind);
    }

    [Fact]
    public void Exit_moves_created_and_running_to_stopped_and_leaves_the_rest()
    {
        Assert.Same(StoppedState.Instance, CreatedState.Instance.OnExit());
        Assert.Same(StoppedState.Instance, RunningState.Instance.OnExit());
        Assert.Same(StoppedState.Instance, PausedState.Instance.OnExit());
        Assert.Same(StoppedState.Instance, PausingState.Instance.OnExit());
        Assert.Same(StoppedState.Instance, StoppedState.Instance.OnExit());
        Assert.Same(DeletedState.Instance, DeletedState.Instance.OnExit());
    }

    public static TheoryData<string, string, string> Transitions => new()
    {
        // state, event, next state
        { "created", "start", "running" }, { "running", "start", "running" },
        { "running", "pause", "pausing" }, { "pausing", "paused", "paused" }, { "pausing", "pause failed", "running" },
        { "stopped", "paused", "stopped" }, { "stopped", "pause failed", "stopped" },
        { "paused", "resumed", "running" }, { "stopped", "resumed", "stopped" }, { "running", "resumed", "running" },
    };

    [Theory]
    [MemberData(nameof(Transitions))]
    public void Each_state_names_the_state_an_event_leads_to(string state, string evt, string next)
    {
        var s = State(state);
        var after = evt switch
        {
            "start" => s.OnStart(),
            "pause" => s.BeginPause(),
            "paused" => s.OnPauseEnded(paused: true),
            "pause failed" => s.OnPauseEnded(paused: false),
            _ => s.OnResumed(),
        };
        Assert.Same(State(next), after);
    }

    [Fact]
    public void States_report_containerd_statuses()
    {
        Assert.Equal(
            [TaskStatus.Created, TaskStatus.Running, TaskStatus.Pausing, TaskStatus.Paused, TaskStatus.Stopped, TaskStatus.Stopped],
            new ProcessState[] { CreatedState.Instance, RunningState.Instance, PausingState.Instance, PausedState.Instance, StoppedState.Instance, DeletedState.Instance }.Select(s => s.Status));
    }

    private static ProcessState State(string name) => name switch
    {
        "created" => CreatedState.Instance,
        "running" => RunningState.Instance,
        "pausing" => PausingState.Instance,
        "paused" => PausedState.Instance,
        "stopped" => StoppedState.Instance,
        _ => DeletedState.Instance,
    };
}
