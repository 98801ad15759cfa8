using Containerd.Task.V2;
using Google.Protobuf.WellKnownTypes;
using Shim.Core.Errors;
using Shim.Core.Logging;
using Shim.Core.Processes;
using Shim.Os;
using Shim.Protos;
using Shim.Os.Terminals;
using TaskStatus = Containerd.Types.Task.Status;

namespace Shim.Core.Service;

public sealed partial class TaskService
{
    /// <summary>Start: runc start of init, or runc exec of a stored exec.</summary>
    public async Task<StartResponse> StartAsync(StartRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        Identifiers.Check("start", request.Id, request.ExecId);
        var container = Get(request.Id);
        if (request.ExecId.Length == 0)
        {
            await container.Init.StartAsync(_router, pid => WatchCgroup(container, pid), ct).ConfigureAwait(false);
            return new StartResponse { Pid = (uint)container.Init.Pid };
        }
        var exec = container.GetExec(request.ExecId);
        await exec.StartAsync(_router, container.Options, ct).ConfigureAwait(false);
        return new StartResponse { Pid = (uint)exec.Pid };
    }

    /// <summary>Kill: runc kill [--all] for init, kill(2) for an exec.</summary>
    public async Task<Empty> KillAsync(KillRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        Identifiers.Check("kill", request.Id, request.ExecId);
        var container = Get(request.Id);
        CheckSignal(request);
        if (request.ExecId.Length == 0)
        {
            // the cgroup is read before the signal (an OOM so far is reported while it is there), and
            // the SIGKILL exit that follows is the client's, not one to attribute to an OOM kill
            _oom?.BeforeSignal(container.Id, request.Signal);
            await container.Init.KillAsync(request.Signal, request.All, ct).ConfigureAwait(false);
        }
        else
        {
            await container.GetExec(request.ExecId).KillAsync(request.Signal, ct).ConfigureAwait(false);
        }
        return new Empty();
    }

    /// <summary>Linux numbers its signals 1 to 64 (SIGRTMAX; 0 only probes); kill(2) answers EINVAL to the rest.</summary>
    internal const uint MaxSignal = 64;

    // containerd's shim passes any number on and answers kill(2)'s EINVAL as Unknown; the
    // request is what is wrong, so it is refused as such before runc or the kernel sees it
    private static void CheckSignal(KillRequest request)
    {
        if (request.Signal > MaxSignal)
        {
            string target = request.ExecId.Length == 0 ? request.Id : $"exec {request.ExecId} of {request.Id}";
            throw new ShimException(ErrorKind.InvalidArgument, $"kill {target}: signal {request.Signal} is not a Linux signal (1 to {MaxSignal})");
        }
    }

    /// <summary>Delete: for init runc delete, unmount, TaskDelete and the container is forgotten; for an exec its record goes.</summary>
    public async Task<DeleteResponse> DeleteAsync(DeleteRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        Identifiers.Check("delete", request.Id, request.ExecId);
        var container = Get(request.Id);
        if (request.ExecId.Length > 0)
        {
            var exec = container.GetExec(request.ExecId);
            await exec.DeleteAsync(ct).ConfigureAwait(false);
            container.RemoveExec(exec.ExecId);
            _router.Forget(exec.Pid);
            return new DeleteResponse { Pid = (uint)exec.Pid, ExitStatus = (uint)exec.ExitStatus, ExitedAt = ExitTime(exec) };
        }
        var init = container.Init;
        await init.DeleteAsync(ct).ConfigureAwait(false);
        try
        {
            container.UnmountRootfs();
        }
        catch (Exception ex) when (ex is ErrnoException or IOException or UnauthorizedAccessException)
        {
            _stdio.Log.Warn("unmounting rootfs failed", ShimLog.Field("id", container.Id) + " " + ShimLog.Field("error", ex.Message));
        }
        _router.Forget(init.Pid);
        _oom?.Remove(container.Id);
        lock (_gate)
        {
            _containers.Remove(container.Id);
        }
        _events.Deleted(init);
        _stdio.Log.Info("container deleted", ShimLog.Field("id", container.Id));
        return new DeleteResponse { Pid = (uint)init.Pid, ExitStatus = (uint)init.ExitStatus, ExitedAt = ExitTime(init) };
    }

    /// <summary>Wait: blocks until the process exits.</summary>
    public async Task<WaitResponse> WaitAsync(WaitRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        Identifiers.Check("wait", request.Id, request.ExecId);
        var process = Find(request.Id, request.ExecId);
        await process.WaitAsync(ct).ConfigureAwait(false);
        return new WaitResponse { ExitStatus = (uint)process.ExitStatus, ExitedAt = ExitTime(process) };
    }

    /// <summary>State: answered from memory, never from runc.</summary>
    public Task<StateResponse> StateAsync(StateRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        Identifiers.Check("state", request.Id, request.ExecId);
        _ = ct;
        var container = Get(request.Id);
        ContainerProcess process = request.ExecId.Length == 0 ? container.Init : container.GetExec(request.ExecId);
        var status = process.CurrentState.Status;
        if (process is ExecProcess && status == TaskStatus.Running && container.Init.State.Status is TaskStatus.Paused or TaskStatus.Pausing)
        {
            status = container.Init.State.Status; // an exec of a frozen container is frozen too
        }
        return Task.FromResult(new StateResponse
        {
            Id = process.Id,
            Bundle = container.Bundle,
            Pid = (uint)process.Pid,
            Status = status,
            Stdin = process.Stdio.Stdin,
            Stdout = process.Stdio.Stdout,
            Stderr = process.Stdio.Stderr,
            Terminal = process.Stdio.Terminal,
            ExitStatus = (uint)process.ExitStatus,
            ExitedAt = ExitTime(process),
        });
    }

    /// <summary>Pids: runc ps, with the exec id attached to exec processes.</summary>
    public async Task<PidsResponse> PidsAsync(PidsRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        Identifiers.Check("pids", request.Id);
        var container = Get(request.Id);
        var pids = await container.Init.Runc.PsAsync(container.Id, ct).ConfigureAwait(false);
        var execs = container.Execs.Where(e => e.Pid > 0).ToDictionary(e => e.Pid, e => e.ExecId);
        var response = new PidsResponse();
        foreach (int pid in pids)
        {
            var info = new Containerd.Types.Task.ProcessInfo { Pid = (uint)pid };
            if (execs.TryGetValue(pid, out var execId))
            {
                info.Info = TypeUrls.Pack(new Containerd.Runc.V1.ProcessDetails { ExecId = execId });
            }
            response.Processes.Add(info);
        }
        return response;
    }

    /// <summary>CloseIO: drops the shim's stdin writer of init or an exec, at once or, before its stdio is open, as soon as it is.</summary>
    public Task<Empty> CloseIOAsync(CloseIORequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        Identifiers.Check("close-io", request.Id, request.ExecId);
        _ = ct;
        Find(request.Id, request.ExecId).CloseStdin();
        return Task.FromResult(new Empty());
    }

    /// <summary>ResizePty: sets the window size of init's or an exec's terminal, at once or as soon as the console arrives.</summary>
    public Task<Empty> ResizePtyAsync(ResizePtyRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        Identifiers.Check("resize-pty", request.Id, request.ExecId);
        _ = ct;
        Find(request.Id, request.ExecId).Resize(request.Width, request.Height);
        return Task.FromResult(new Empty());
    }

    /// <summary>Pause: runc pause, PAUSING while it runs, then TaskPaused.</summary>
    public async Task<Empty> PauseAsync(PauseRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        Identifiers.Check("pause", request.Id);
        await Get(request.Id).Init.PauseAsync(ct).ConfigureAwait(false);
        return new Empty();
    }

    /// <summary>Resume: runc resume, then TaskResumed.</summary>
    public async Task<Empty> ResumeAsync(ResumeRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        Identifiers.Check("resume", request.Id);
        await Get(request.Id).Init.ResumeAsync(ct).ConfigureAwait(false);
        return new Empty();
    }

    /// <summary>Update: the resources Any carries OCI LinuxResources JSON for runc update.</summary>
    public async Task<Empty> UpdateAsync(UpdateTaskRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        Identifiers.Check("update", request.Id);
        var container = Get(request.Id);
        if (request.Resources is null || request.Resources.Value.IsEmpty)
        {
            throw new ShimException(ErrorKind.InvalidArgument, $"update {request.Id}: no resources given");
        }
        await container.Init.UpdateAsync(request.Resources.Value.Memory, ct).ConfigureAwait(false);
        return new Empty();
    }

    /// <summary>Stats: the container's cgroup metrics (v1 or v2 message, as the host mounts them).</summary>
    public Task<StatsResponse> StatsAsync(StatsRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        Identifiers.Check("stats", request.Id);
        _ = ct;
        var container = Get(request.Id);
        var cgroup = container.Cgroup ?? throw new ShimException(ErrorKind.NotFound, $"stats {request.Id}: cgroup does not exist");
        return Task.FromResult(new StatsResponse { Stats = cgroup.Stats() });
    }

    /// <summary>Connect: the shim's pid and the task's init pid.</summary>
    public Task<ConnectResponse> ConnectAsync(ConnectRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        _ = ct;
        uint taskPid = 0;
        lock (_gate)
        {
            if (_containers.TryGetValue(request.Id, out var container) && container is not null)
            {
                taskPid = (uint)container.Init.Pid;
            }
        }
        return Task.FromResult(new ConnectResponse { ShimPid = (uint)Environment.ProcessId, TaskPid = taskPid });
    }

    /// <summary>Shutdown: the shim exits only when no container is left.</summary>
    public Task<Empty> ShutdownAsync(ShutdownRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        _ = request;
        _ = ct;
        // containerd calls it after each container's delete, and when a container's create failed:
        // a pod's sandbox keeps the shim until ShutdownSandbox
        TryShutdown();
        return Task.FromResult(new Empty());
    }

    /// <summary>Something that keeps the shim serving with no container left (the pod of the sandbox API), or null.</summary>
    public Func<bool>? KeepsServing { get; set; }

    /// <summary>Ends the shim (<see cref="ShutdownRequested"/>) when no container is left and nothing else keeps it.</summary>
    public void TryShutdown()
    {
        lock (_gate)
        {
            if (_containers.Count == 0 && KeepsServing?.Invoke() != true)
            {
                _shutdown.TrySetResult();
            }
        }
    }

    private ContainerProcess Find(string id, string execId)
    {
        var container = Get(id);
        return execId.Length == 0 ? container.Init : container.GetExec(execId);
    }

    private static Timestamp ExitTime(ContainerProcess process) =>
        process.ExitedAt == default ? Timestamps.ZeroTime : Timestamps.From(process.ExitedAt);
}
