using Containerd.Task.V2;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Shim.Core.Errors;
using Shim.Ttrpc;

namespace Shim.Core.Service;

public sealed partial class TaskService
{
    /// <summary>Task API v2 service name (containerd 1.x, and 2.x for version-2 shims).</summary>
    public const string TaskV2 = "containerd.task.v2.Task";

    /// <summary>Task API v3 service name (containerd 2.x); same messages, other package.</summary>
    public const string TaskV3 = "containerd.task.v3.Task";

    /// <summary>Binds every task RPC under both service names.</summary>
    public void Register(TtrpcServiceRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        foreach (string service in (ReadOnlySpan<string>)[TaskV2, TaskV3])
        {
            Bind(registry, service, "State", StateRequest.Parser, StateAsync);
            Bind(registry, service, "Create", CreateTaskRequest.Parser, CreateAsync);
            Bind(registry, service, "Start", StartRequest.Parser, StartAsync);
            Bind(registry, service, "Delete", DeleteRequest.Parser, DeleteAsync);
            Bind(registry, service, "Pids", PidsRequest.Parser, PidsAsync);
            Bind(registry, service, "Kill", KillRequest.Parser, KillAsync);
            Bind(registry, service, "CloseIO", CloseIORequest.Parser, CloseIOAsync);
            Bind(registry, service, "Wait", WaitRequest.Parser, WaitAsync);
            Bind(registry, service, "Connect", ConnectRequest.Parser, ConnectAsync);
            Bind(registry, service, "Shutdown", ShutdownRequest.Parser, ShutdownAsync);
            Bind(registry, service, "Pause", PauseRequest.Parser, PauseAsync);
            Bind(registry, service, "Resume", ResumeRequest.Parser, ResumeAsync);
            Bind(registry, service, "Checkpoint", CheckpointTaskRequest.Parser, CheckpointAsync);
            Bind(registry, service, "Exec", ExecProcessRequest.Parser, ExecAsync);
            Bind(registry, service, "ResizePty", ResizePtyRequest.Parser, ResizePtyAsync);
            Bind(registry, service, "Update", UpdateTaskRequest.Parser, UpdateAsync);
            Bind(registry, service, "Stats", StatsRequest.Parser, StatsAsync);
        }
    }

    private static void Bind<TRequest, TResponse>(TtrpcServiceRegistry registry, string service, string method,
        MessageParser<TRequest> parser, Func<TRequest, CancellationToken, Task<TResponse>> handler)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse> =>
        registry.Register(service, method, parser, InContext(handler));

    /// <summary>
    /// The handler as containerd calls it: a failure that does not say what was attempted on what (an
    /// errno, an I/O error of the runtime library) is told as the request's operation and its reason,
    /// "create c1: Could not find file '/b/init.pid'." (<see cref="StatusMapping.InContext"/>).
    /// </summary>
    internal static Func<TRequest, TtrpcCallContext, ValueTask<TResponse>> InContext<TRequest, TResponse>(Func<TRequest, CancellationToken, Task<TResponse>> handler)
        where TRequest : IMessage<TRequest> =>
        (request, context) =>
        {
            Task<TResponse> call;
            try
            {
                call = handler(request, context.CancellationToken);
            }
            catch (Exception ex) when (!StatusMapping.SaysWhatFailed(ex))
            {
                throw StatusMapping.InContext(Operation(request), ex);
            }
            // State and the other answers from memory complete at once: no second state machine for them
            return new ValueTask<TResponse>(call.IsCompletedSuccessfully ? call : AwaitInContext(call, request));
        };

    private static async Task<TResponse> AwaitInContext<TResponse>(Task<TResponse> call, IMessage request)
    {
        try
        {
            return await call.ConfigureAwait(false);
        }
        catch (Exception ex) when (!StatusMapping.SaysWhatFailed(ex))
        {
            throw StatusMapping.InContext(Operation(request), ex);
        }
    }

    /// <summary>What a request attempts on what, as the errors say it: "create c1", "kill exec e1 of c1", "exec e1 in c1".</summary>
    internal static string Operation(IMessage request) => request switch
    {
        CreateTaskRequest r => $"create {r.Id}",
        StartRequest r => On("start", r.Id, r.ExecId),
        DeleteRequest r => On("delete", r.Id, r.ExecId),
        StateRequest r => On("state", r.Id, r.ExecId),
        KillRequest r => On("kill", r.Id, r.ExecId),
        WaitRequest r => On("wait", r.Id, r.ExecId),
        CloseIORequest r => On("close-io", r.Id, r.ExecId),
        ResizePtyRequest r => On("resize-pty", r.Id, r.ExecId),
        ExecProcessRequest r => $"exec {r.ExecId} in {r.Id}",
        PidsRequest r => $"pids {r.Id}",
        PauseRequest r => $"pause {r.Id}",
        ResumeRequest r => $"resume {r.Id}",
        CheckpointTaskRequest r => $"checkpoint {r.Id}",
        UpdateTaskRequest r => $"update {r.Id}",
        StatsRequest r => $"stats {r.Id}",
        ConnectRequest r => $"connect {r.Id}",
        ShutdownRequest => "shutdown",
        Containerd.Runtime.Sandbox.V1.CreateSandboxRequest r => $"create sandbox {r.SandboxId}",
        Containerd.Runtime.Sandbox.V1.StartSandboxRequest r => $"start sandbox {r.SandboxId}",
        Containerd.Runtime.Sandbox.V1.PlatformRequest r => $"platform of sandbox {r.SandboxId}",
        Containerd.Runtime.Sandbox.V1.StopSandboxRequest r => $"stop sandbox {r.SandboxId}",
        Containerd.Runtime.Sandbox.V1.WaitSandboxRequest r => $"wait sandbox {r.SandboxId}",
        Containerd.Runtime.Sandbox.V1.SandboxStatusRequest r => $"status of sandbox {r.SandboxId}",
        Containerd.Runtime.Sandbox.V1.PingRequest r => $"ping sandbox {r.SandboxId}",
        Containerd.Runtime.Sandbox.V1.ShutdownSandboxRequest r => $"shutdown sandbox {r.SandboxId}",
        Containerd.Runtime.Sandbox.V1.SandboxMetricsRequest r => $"metrics of sandbox {r.SandboxId}",
        _ => "call",
    };

    private static string On(string verb, string id, string execId) => execId.Length == 0 ? $"{verb} {id}" : $"{verb} exec {execId} of {id}";
}
