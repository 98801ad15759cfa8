using Shim.Core.Errors;
using TaskStatus = Containerd.Types.Task.Status;

namespace Shim.Core.Processes;

/// <summary>
/// One state of a container process (init or exec). Each state answers every operation, so an
/// illegal call fails in one place; the process holds the lock, the state decides.
/// </summary>
public abstract class ProcessState
{
    /// <summary>Name used in error messages.</summary>
    public abstract string Name { get; }

    /// <summary>Status reported by State.</summary>
    public abstract TaskStatus Status { get; }

    /// <summary>May Start run in this state?</summary>
    public virtual void CheckStart() => throw Illegal("start");

    /// <summary>May a signal be sent in this state? An exec that never started cannot be signalled.</summary>
    public virtual void CheckKill(bool isExec) => throw new ShimException(ErrorKind.NotFound, $"cannot kill a process that is {Name}: process already finished");

    /// <summary>May Delete run in this state?</summary>
    public virtual void CheckDelete() => throw Illegal("delete");

    /// <summary>The state while runc pause runs (init), or FailedPrecondition.</summary>
    public virtual ProcessState BeginPause() => throw Illegal("pause");

    /// <summary>The state once runc pause returned (<paramref name="paused"/>: it succeeded); an exit meanwhile stays.</summary>
    public virtual ProcessState OnPauseEnded(bool paused) => this;

    /// <summary>The state once runc resume returned; an exit meanwhile stays.</summary>
    public virtual ProcessState OnResumed() => this;

    /// <summary>May the container be resumed (init) in this state?</summary>
    public virtual void CheckResume() => throw Illegal("resume");

    /// <summary>May resources be updated (init) in this state?</summary>
    public virtual void CheckUpdate() => throw Illegal("update");

    /// <summary>May an exec be added to the container (init's state) in this state?</summary>
    public virtual void CheckExec() => throw Illegal("exec in");

    /// <summary>May the container be checkpointed (init) in this state? Only running or paused.</summary>
    public virtual void CheckCheckpoint() => throw Illegal("checkpoint");

    /// <summary>The state after the process exits.</summary>
    public virtual ProcessState OnExit() => this;

    /// <summary>The state after a successful start.</summary>
    public virtual ProcessState OnStart() => this;

    /// <summary>A FailedPrecondition naming the operation and the state.</summary>
    protected ShimException Illegal(string op) => new(ErrorKind.FailedPrecondition, $"cannot {op} a process that is {Name}");
}

/// <summary>Created by runc (init) or stored by Exec, not started.</summary>
public sealed class CreatedState : ProcessState
{
    /// <summary>The one instance.</summary>
    public static readonly CreatedState Instance = new();
    /// <inheritdoc />
    public override string Name => "created";
    /// <inheritdoc />
    public override TaskStatus Status => TaskStatus.Created;
    /// <inheritdoc />
    public override void CheckStart() { }
    /// <inheritdoc />
    public override void CheckKill(bool isExec)
    {
        if (isExec)
        {
            throw new ShimException(ErrorKind.FailedPrecondition, "cannot kill an exec process that has not been started");
        }
    }
    /// <inheritdoc />
    public override void CheckDelete() { }
    /// <inheritdoc />
    public override void CheckUpdate() { }
    /// <inheritdoc />
    public override void CheckExec() { }
    /// <inheritdoc />
    public override ProcessState OnExit() => StoppedState.Instance;
    /// <inheritdoc />
    public override ProcessState OnStart() => RunningState.Instance;
}

/// <summary>Started and not yet exited.</summary>
public sealed class RunningState : ProcessState
{
    /// <summary>The one instance.</summary>
    public static readonly RunningState Instance = new();
    /// <inheritdoc />
    public override string Name => "running";
    /// <inheritdoc />
    public override TaskStatus Status => TaskStatus.Running;
    /// <inheritdoc />
    public override void CheckKill(bool isExec) { }
    /// <inheritdoc />
    public override ProcessState BeginPause() => PausingState.Instance;
    /// <inheritdoc />
    public override void CheckCheckpoint() { }
    /// <inheritdoc />
    public override void CheckUpdate() { }
    /// <inheritdoc />
    public override void CheckExec() { }
    /// <inheritdoc />
    public override ProcessState OnExit() => StoppedState.Instance;
}

/// <summary>runc pause is in flight.</summary>
public sealed class PausingState : ProcessState
{
    /// <summary>The one instance.</summary>
    public static readonly PausingState Instance = new();
    /// <inheritdoc />
    public override string Name => "pausing";
    /// <inheritdoc />
    public override TaskStatus Status => TaskStatus.Pausing;
    /// <inheritdoc />
    public override void CheckKill(bool isExec) { }
    /// <inheritdoc />
    public override ProcessState OnPauseEnded(bool paused) => paused ? PausedState.Instance : RunningState.Instance;
    /// <inheritdoc />
    public override ProcessState OnExit() => StoppedState.Instance;
}

/// <summary>Frozen by runc pause.</summary>
public sealed class PausedState : ProcessState
{
    /// <summary>The one instance.</summary>
    public static readonly PausedState Instance = new();
    /// <inheritdoc />
    public override string Name => "paused";
    /// <inheritdoc />
    public override TaskStatus Status => TaskStatus.Paused;
    /// <inheritdoc />
    public override void CheckKill(bool isExec) { }
    /// <inheritdoc />
    public override void CheckResume() { }
    /// <inheritdoc />
    public override void CheckCheckpoint() { }
    /// <inheritdoc />
    public override void CheckUpdate() { }
    /// <inheritdoc />
    public override ProcessState OnResumed() => RunningState.Instance;
    /// <inheritdoc />
    public override ProcessState OnExit() => StoppedState.Instance;
}

/// <summary>Exited; its status can be read and it can be deleted.</summary>
public sealed class StoppedState : ProcessState
{
    /// <summary>The one instance.</summary>
    public static readonly StoppedState Instance = new();
    /// <inheritdoc />
    public override string Name => "stopped";
    /// <inheritdoc />
    public override TaskStatus Status => TaskStatus.Stopped;
    /// <inheritdoc />
    public override void CheckDelete() { }
}

/// <summary>Deleted; only a request racing the Delete can still see it.</summary>
public sealed class DeletedState : ProcessState
{
    /// <summary>The one instance.</summary>
    public static readonly DeletedState Instance = new();
    /// <inheritdoc />
    public override string Name => "deleted";
    /// <inheritdoc />
    public override TaskStatus Status => TaskStatus.Stopped;
    /// <inheritdoc />
    public override void CheckStart() => throw Gone("start");
    /// <inheritdoc />
    public override void CheckKill(bool isExec) => throw Gone("kill");
    /// <inheritdoc />
    public override void CheckDelete() => throw Gone("delete");
    /// <inheritdoc />
    public override ProcessState BeginPause() => throw Gone("pause");
    /// <inheritdoc />
    public override void CheckResume() => throw Gone("resume");
    /// <inheritdoc />
    public override void CheckUpdate() => throw Gone("update");
    /// <inheritdoc />
    public override void CheckExec() => throw Gone("exec in");

    private static ShimException Gone(string op) => new(ErrorKind.NotFound, $"cannot {op} a process that is deleted");
}
