using Containerd.Events;
using Containerd.Task.V2;
using Google.Protobuf.WellKnownTypes;
using Shim.Core.Errors;
using Shim.Core.Logging;
using Shim.Protos;

namespace Shim.Core.Service;

public sealed partial class TaskService
{
    /// <summary>Start: runc start of the init process.</summary>
    public async Task<StartResponse> StartAsync(StartRequest request, CancellationToken ct)
    {
        var container = Get(request.Id);
        NoExec("start", request.Id, request.ExecId);
        await container.Init.StartAsync(ct).ConfigureAwait(false);
        return new StartResponse { Pid = (uint)container.Init.Pid };
    }

    /// <summary>Kill: runc kill [--all].</summary>
    public async Task<Empty> KillAsync(KillRequest request, CancellationToken ct)
    {
        var container = Get(request.Id);
        NoExec("kill", request.Id, request.ExecId);
        await container.Init.KillAsync(request.Signal, request.All, ct).ConfigureAwait(false);
        return new Empty();
    }

    /// <summary>Delete: runc delete, unmount, TaskDelete; the container is forgotten.</summary>
    public async Task<DeleteResponse> DeleteAsync(DeleteRequest request, CancellationToken ct)
    {
        var container = Get(request.Id);
        NoExec("delete", request.Id, request.ExecId);
        var init = container.Init;
        await init.DeleteAsync(ct).ConfigureAwait(false);
        try
        {
            container.UnmountRootfs();
        }
        catch (Exception ex)
        {
            ShimLog.Warn("unmounting rootfs failed", ShimLog.Field("id", container.Id) + " " + ShimLog.Field("error", ex.Message));
        }
        _router.Forget(init.Pid);
        lock (_gate)
        {
            _containers.Remove(container.Id);
        }
        var exitedAt = ExitTime(init);
        _events.Publish(new TaskDelete
        {
            ContainerId = container.Id,
            Pid = (uint)init.Pid,
            ExitStatus = (uint)init.ExitStatus,
            ExitedAt = exitedAt,
        });
        ShimLog.Info("container deleted", ShimLog.Field("id", container.Id));
        return new DeleteResponse { Pid = (uint)init.Pid, ExitStatus = (uint)init.ExitStatus, ExitedAt = exitedAt };
    }

    /// <summary>Wait: blocks until the init process exits.</summary>
    public async Task<WaitResponse> WaitAsync(WaitRequest request, CancellationToken ct)
    {
        var container = Get(request.Id);
        NoExec("wait", request.Id, request.ExecId);
        await container.Init.WaitAsync(ct).ConfigureAwait(false);
        return new WaitResponse { ExitStatus = (uint)container.Init.ExitStatus, ExitedAt = ExitTime(container.Init) };
    }

    /// <summary>State: answered from memory, never from runc.</summary>
    public Task<StateResponse> StateAsync(StateRequest request, CancellationToken ct)
    {
        _ = ct;
        var container = Get(request.Id);
        NoExec("state", request.Id, request.ExecId);
        var init = container.Init;
        var state = init.State;
        return Task.FromResult(new StateResponse
        {
            Id = container.Id,
            Bundle = container.Bundle,
            Pid = (uint)init.Pid,
            Status = state.Status,
            Stdin = init.Stdio.Stdin,
            Stdout = init.Stdio.Stdout,
            Stderr = init.Stdio.Stderr,
            Terminal = init.Stdio.Terminal,
            ExitStatus = (uint)init.ExitStatus,
            ExitedAt = ExitTime(init),
        });
    }

    /// <summary>Pids: runc ps.</summary>
    public async Task<PidsResponse> PidsAsync(PidsRequest request, CancellationToken ct)
    {
        var container = Get(request.Id);
        var pids = await container.Init.Runc.PsAsync(container.Id, ct).ConfigureAwait(false);
        var response = new PidsResponse();
        foreach (int pid in pids)
        {
            response.Processes.Add(new Containerd.Types.Task.ProcessInfo { Pid = (uint)pid });
        }
        return response;
    }

    /// <summary>CloseIO: drops the shim's stdin writer.</summary>
    public Task<Empty> CloseIOAsync(CloseIORequest request, CancellationToken ct)
    {
        _ = ct;
        var container = Get(request.Id);
        NoExec("close io", request.Id, request.ExecId);
        container.Init.CloseStdin();
        return Task.FromResult(new Empty());
    }

    /// <summary>Connect: the shim's pid and the task's init pid.</summary>
    public Task<ConnectResponse> ConnectAsync(ConnectRequest request, CancellationToken ct)
    {
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
        _ = request;
        _ = ct;
        lock (_gate)
        {
            if (_containers.Count == 0)
            {
                _shutdown.TrySetResult();
            }
        }
        return Task.FromResult(new Empty());
    }

    private static Timestamp ExitTime(Processes.InitProcess init) =>
        init.ExitedAt == default ? Timestamps.ZeroTime : Timestamps.From(init.ExitedAt);

    private static ShimException NotYet(string rpc) => new(ErrorKind.NotImplemented, $"{rpc} is not implemented by this shim yet");
}
