using Containerd.Events;
using Containerd.Task.V2;
using Shim.Core.Processes;
using Shim.Protos;
using Shim.Os.Terminals;

namespace Shim.Core.Events;

/// <summary>
/// Everything the shim tells containerd, built and published here and nowhere else; the callers say
/// what happened. The order, as containerd's own shim keeps it (cmd/containerd-shim-runc-v2/task/service.go):
/// <list type="number">
/// <item>TaskCreate once runc create returned (<see cref="Created"/>), TaskExecAdded when Exec stores a process (<see cref="ExecAdded"/>).</item>
/// <item>TaskStart / TaskExecStarted once runc start or exec returned (<see cref="Started"/>), always before that process's TaskExit.</item>
/// <item>TaskPaused / TaskResumed after runc pause / resume (<see cref="Paused"/>, <see cref="Resumed"/>).</item>
/// <item>TaskOOM for each OOM kill in the container's cgroup (<see cref="Oom"/>); those seen by init's exit go out before its TaskExit.</item>
/// <item>TaskExit for each process that ran (<see cref="Exited"/>): an exec's before its init's; init's after the rest of a
///   container without its own pid namespace was killed, and once the client read what the process left in its FIFOs (bounded).
///   <see cref="ExitSequencer"/> decides when.</item>
/// <item>TaskDelete when init is deleted (<see cref="Deleted"/>); an exec's delete sends nothing, as containerd's shim.</item>
/// </list>
/// </summary>
public sealed class TaskEvents(IEventPublisher publisher)
{
    /// <summary>The publisher the events go through (shutdown flushes it).</summary>
    public IEventPublisher Publisher { get; } = publisher;

    /// <summary>runc create returned with init's pid.</summary>
    public void Created(CreateTaskRequest request, int pid)
    {
        ArgumentNullException.ThrowIfNull(request);
        var created = new TaskCreate
        {
            ContainerId = request.Id,
            Bundle = request.Bundle,
            Io = new TaskIO { Stdin = request.Stdin, Stdout = request.Stdout, Stderr = request.Stderr, Terminal = request.Terminal },
            Checkpoint = request.Checkpoint,
            Pid = (uint)pid,
        };
        created.Rootfs.Add(request.Rootfs);
        Publisher.Publish(created);
    }

    /// <summary>Exec stored a process in the container.</summary>
    public void ExecAdded(string containerId, string execId) =>
        Publisher.Publish(new TaskExecAdded { ContainerId = containerId, ExecId = execId });

    /// <summary>runc start, restore or exec returned: the process runs with its pid.</summary>
    internal void Started(ContainerProcess process) =>
        Publisher.Publish(process.IsInit
            ? new TaskStart { ContainerId = process.ContainerId, Pid = (uint)process.Pid }
            : new TaskExecStarted { ContainerId = process.ContainerId, ExecId = process.ExecId, Pid = (uint)process.Pid });

    /// <summary>runc pause froze the container.</summary>
    public void Paused(string containerId) => Publisher.Publish(new TaskPaused { ContainerId = containerId });

    /// <summary>runc resume thawed the container.</summary>
    public void Resumed(string containerId) => Publisher.Publish(new TaskResumed { ContainerId = containerId });

    /// <summary>The kernel's OOM killer killed a process in the container's cgroup.</summary>
    public void Oom(string containerId) => Publisher.Publish(new TaskOOM { ContainerId = containerId });

    /// <summary>A process that ran has exited with its recorded status; the id is the exec id, or the container id for init.</summary>
    internal void Exited(ContainerProcess process) =>
        Publisher.Publish(new TaskExit
        {
            ContainerId = process.ContainerId,
            Id = process.Id,
            Pid = (uint)process.Pid,
            ExitStatus = (uint)process.ExitStatus,
            ExitedAt = Timestamps.From(process.ExitedAt),
        });

    /// <summary>init was deleted: the container is gone from the shim.</summary>
    internal void Deleted(InitProcess init) =>
        Publisher.Publish(new TaskDelete
        {
            ContainerId = init.ContainerId,
            Pid = (uint)init.Pid,
            ExitStatus = (uint)init.ExitStatus,
            ExitedAt = init.ExitedAt == default ? Timestamps.ZeroTime : Timestamps.From(init.ExitedAt),
        });
}
