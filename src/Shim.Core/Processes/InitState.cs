using Shim.Core.Errors;
using TaskStatus = Containerd.Types.Task.Status;

namespace Shim.Core.Processes;

/// <summary>
/// One state of a container's init process. Each state answers every operation, so an illegal call
/// fails in one place; the process holds the lock, the state decides.
/// </summary>
public abstract class InitState
{
    /// <summary>Name used in error messages.</summary>
    public abstract string Name { get; }

    /// <summary>Status reported by State.</summary>
    public abstract TaskStatus Status { get; }

    /// <summary>May Start run in this state?</summary>
    public virtual void CheckStart() => throw Illegal("start");

    /// <summary>May a signal be sent in this state?</summary>
    public virtual void CheckKill() => throw new ShimException(ErrorKind.NotFound, $"cannot kill a process that is {Name}: process already finished");

    /// <summary>May Delete run in this state?</summary>
    public virtual void CheckDelete() => throw Illegal("delete");

    /// <summary>The state after the process exits.</summary>
    public virtual InitState OnExit() => this;

    /// <summary>A FailedPrecondition naming the operation and the state.</summary>
    protected ShimException Illegal(string op) => new(ErrorKind.FailedPrecondition, $"cannot {op} a process that is {Name}");
}

/// <summary>Created by runc, not started.</summary>
public sealed class CreatedState : InitState
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
    public override void CheckKill() { }
    /// <inheritdoc />
    public override void CheckDelete() { }
    /// <inheritdoc />
    public override InitState OnExit() => StoppedState.Instance;
}

/// <summary>Started and not yet exited.</summary>
public sealed class RunningState : InitState
{
    /// <summary>The one instance.</summary>
    public static readonly RunningState Instance = new();
    /// <inheritdoc />
    public override string Name => "running";
    /// <inheritdoc />
    public override TaskStatus Status => TaskStatus.Running;
    /// <inheritdoc />
    public override void CheckKill() { }
    /// <inheritdoc />
    public override InitState OnExit() => StoppedState.Instance;
}

/// <summary>Exited; its status can be read and it can be deleted.</summary>
public sealed class StoppedState : InitState
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
public sealed class DeletedState : InitState
{
    /// <summary>The one instance.</summary>
    public static readonly DeletedState Instance = new();
    /// <inheritdoc />
    public override string Name => "deleted";
    /// <inheritdoc />
    public override TaskStatus Status => TaskStatus.Stopped;
    /// <inheritdoc />
    public override void CheckStart() => throw new ShimException(ErrorKind.NotFound, "cannot start a process that is deleted");
    /// <inheritdoc />
    public override void CheckKill() => throw new ShimException(ErrorKind.NotFound, "cannot kill a process that is deleted");
    /// <inheritdoc />
    public override void CheckDelete() => throw new ShimException(ErrorKind.NotFound, "cannot delete a process that is deleted");
}
