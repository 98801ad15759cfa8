using Shim.Core.Errors;
using Shim.Core.Processes;
using TaskStatus = Containerd.Types.Task.Status;

namespace Shim.Core.Tests.Processes;

public class InitStateTests
{
    public static TheoryData<string, string, ErrorKind?> Table => new()
    {
        // state, operation, expected failure (null = allowed)
        { "created", "start", null }, { "created", "kill", null }, { "created", "delete", null },
        { "running", "start", ErrorKind.FailedPrecondition }, { "running", "kill", null }, { "running", "delete", ErrorKind.FailedPrecondition },
        { "stopped", "start", ErrorKind.FailedPrecondition }, { "stopped", "kill", ErrorKind.NotFound }, { "stopped", "delete", null },
        { "deleted", "start", ErrorKind.NotFound }, { "deleted", "kill", ErrorKind.NotFound }, { "deleted", "delete", ErrorKind.NotFound },
    };

    [Theory]
    [MemberData(nameof(Table))]
    public void Each_state_allows_or_refuses_each_operation_with_the_right_kind(string state, string op, ErrorKind? expected)
    {
        var s = State(state);
        Action check = op switch { "start" => s.CheckStart, "kill" => s.CheckKill, _ => s.CheckDelete };
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
    public void Exit_moves_created_and_running_to_stopped_and_leaves_the_rest()
    {
        Assert.Same(StoppedState.Instance, CreatedState.Instance.OnExit());
        Assert.Same(StoppedState.Instance, RunningState.Instance.OnExit());
        Assert.Same(StoppedState.Instance, StoppedState.Instance.OnExit());
        Assert.Same(DeletedState.Instance, DeletedState.Instance.OnExit());
    }

    [Fact]
    public void States_report_containerd_statuses()
    {
        Assert.Equal(
            [TaskStatus.Created, TaskStatus.Running, TaskStatus.Stopped, TaskStatus.Stopped],
            new InitState[] { CreatedState.Instance, RunningState.Instance, StoppedState.Instance, DeletedState.Instance }.Select(s => s.Status));
    }

    private static InitState State(string name) => name switch
    {
        "created" => CreatedState.Instance,
        "running" => RunningState.Instance,
        "stopped" => StoppedState.Instance,
        _ => DeletedState.Instance,
    };
}
