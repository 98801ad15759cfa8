using Containerd.Task.V2;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
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
        registry.Register<TRequest, TResponse>(service, method, parser, (request, context) => new ValueTask<TResponse>(handler(request, context.CancellationToken)));
}
