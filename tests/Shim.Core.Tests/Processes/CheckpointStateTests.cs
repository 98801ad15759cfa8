using Shim.Core.Errors;
using Shim.Core.Processes;
using TaskStatus = Containerd.Types.Task.Status;

namespace Shim.Core.Tests.Processes;

public class CheckpointStateTests
{
    public static TheoryData<string, ErrorKind?> CheckpointTable => new()
    {
        // state, expected failure of checkpoint (null = allowed)
        { "created", ErrorKind.FailedPrecondition },
        { "running", null },
        { "pausing", ErrorKind.FailedPrecondition },
        { "paused", null },
        { "stopped", ErrorKind.FailedPrecondition },
        { "deleted", ErrorKind.FailedPrecondition },
        { "restore pending", ErrorKind.FailedPrecondition },
    };

    [Theory]
    [MemberData(nameof(CheckpointTable))]
    public void Only_running_and_paused_containers_can_be_checkpointed(string state, ErrorKind? expected)
    {
        var s = State(state);
        if (expected is null)
        {
            s.CheckCheckpoint();
            return;
        }
        var ex = Assert.Throws<ShimException>(s.CheckCheckpoint);
        Assert.Equal(expected, ex.Kind);
        Assert.Contains("checkpoint", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_restore_pending_init_is_created_may_start_or_be_deleted_but_takes_no_exec_update_pause_or_signal()
    {
        var s = RestorePendingState.Instance;
        Assert.Equal(TaskStatus.Created, s.Status);
        s.CheckStart();
        s.CheckDelete();
        Assert.Equal(ErrorKind.FailedPrecondition, Assert.Throws<ShimException>(() => s.CheckExec()).Kind);
        Assert.Equal(ErrorKind.FailedPrecondition, Assert.Throws<ShimException>(() => s.CheckUpdate()).Kind);
        Assert.Equal(ErrorKind.FailedPrecondition, Assert.Throws<ShimException>(() => s.BeginPause()).Kind);
        Assert.Equal(ErrorKind.NotFound, Assert.Throws<ShimException>(() => s.CheckKill(isExec: false)).Kind);
        Assert.Same(StoppedState.Instance, s.OnExit());
    }

    private static ProcessState State(string name) => name switch
    {
        "created" => CreatedState.Instance,
        "running" => RunningState.Instance,
        "pausing" => PausingState.Instance,
        "paused" => PausedState.Instance,
        "stopped" => StoppedState.Instance,
        "restore pending" => RestorePendingState.Instance,
        _ => DeletedState.Instance,
    };
}
