using System.Text;
using System.Text.Json;
using Containerd.Task.V2;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Shim.Protos;
using Shim.Ttrpc;
using TaskStatus = Containerd.Types.Task.Status;

namespace Shim.E2E.Tests;

/// <summary>
/// Base of tests that drive exec processes over the shim's task API while its Start is inside
/// <c>runc exec</c>: a <see cref="RuncWrapper"/> first on the daemon's PATH holds every runc exec
/// whose spec names an <see cref="ExecHold"/>. Holds and client FIFOs the test makes are propped
/// open before the daemon is torn down, so nothing stays blocked after a failed test.
/// </summary>
public abstract class HeldExecTest : E2ETest, IAsyncLifetime
{
    /// <summary>Bound of each step that waits for the shim or the wrapper.</summary>
    protected static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(20);

    private RuncWrapper? _runc;
    private readonly List<ExecHold> _holds = [];
    private readonly List<ClientStdio> _stdio = [];

    // the wrapper is made here, after the prerequisites were checked and right before the daemon starts
    private protected override ContainerdOptions DaemonOptions
    {
        get
        {
            if (_runc is null)
            {
                _runc = RuncWrapper.Create(ContainerdLines.Current);
                _runc.Before(ExecHold.Snippet);
            }
            return new(PathFirst: _runc.Dir);
        }
    }

    private protected RuncWrapper Runc => _runc ?? throw new InvalidOperationException("the daemon was not started");

    /// <summary>A new hold for one exec (its FIFOs in a temp folder of the test).</summary>
    private protected async Task<ExecHold> NewHoldAsync()
    {
        var hold = await ExecHold.CreateAsync(TempDir("rcs-hold-"), Ct);
        _holds.Add(hold);
        return hold;
    }

    /// <summary>New stdin/stdout FIFOs for one exec, opened as containerd's client opens them.</summary>
    private protected async Task<ClientStdio> NewStdioAsync(bool terminal = false)
    {
        var stdio = await ClientStdio.CreateAsync(TempDir("rcs-xio-"), terminal, Ct);
        _stdio.Add(stdio);
        return stdio;
    }

    /// <summary>Runs <c>sleep 300</c> as <paramref name="id"/> with ctr and connects to its shim.</summary>
    private protected async Task<ShimClient> StartSleeperAsync(string id)
    {
        (await CtrAsync(RunArgs(id, detach: true, "sleep", "300"))).EnsureSuccess();
        return await ShimClient.ConnectAsync(Ctrd, Ns, id, Ct);
    }

    /// <summary>An OCI process spec as containerd's client packs it into ExecProcessRequest.spec.</summary>
    private protected static Any ProcessSpec(IReadOnlyList<string> args, ExecHold? hold = null, bool terminal = false)
    {
        var env = hold is null ? new[] { "PATH=/bin" } : ["PATH=/bin", hold.Env];
        var json = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["terminal"] = terminal,
            ["user"] = new Dictionary<string, int> { ["uid"] = 0, ["gid"] = 0 },
            ["args"] = args,
            ["env"] = env,
            ["cwd"] = "/",
        });
        return TypeUrls.PackRaw(TypeUrls.OciProcess, Encoding.UTF8.GetBytes(json));
    }

    /// <summary>Exec (create only) of <paramref name="args"/> in <paramref name="id"/>.</summary>
    private protected static Task ExecAsync(ShimClient shim, string id, string execId, IReadOnlyList<string> args,
        ExecHold? hold = null, ClientStdio? stdio = null, bool terminal = false) =>
        CallAsync(shim, "Exec", new ExecProcessRequest
        {
            Id = id,
            ExecId = execId,
            Terminal = terminal,
            Stdin = stdio?.Stdin ?? "",
            Stdout = stdio?.Stdout ?? "",
            Stderr = stdio?.Stderr ?? "",
            Spec = ProcessSpec(args, hold, terminal),
        }, Empty.Parser);

    /// <summary>A call that must succeed (60 s ttrpc timeout: some wait for a held start).</summary>
    private protected static Task<TResponse> CallAsync<TRequest, TResponse>(ShimClient shim, string method, TRequest request, MessageParser<TResponse> parser)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse> =>
        shim.Client.CallAsync(shim.TaskApi, method, request, parser, TimeSpan.FromSeconds(60), null, Ct);

    /// <summary>The status code a call ends with (OK when it succeeds), and its message.</summary>
    private protected static async Task<(StatusCode Code, string Message)> StatusOfAsync<TRequest, TResponse>(ShimClient shim, string method, TRequest request, MessageParser<TResponse> parser)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse>
    {
        try
        {
            await CallAsync(shim, method, request, parser);
            return (StatusCode.OK, "");
        }
        catch (TtrpcException ex)
        {
            return (ex.Code, ex.Message);
        }
    }

    private protected static Task<(StatusCode Code, string Message)> StartStatusAsync(ShimClient shim, string id, string execId) =>
        StatusOfAsync(shim, "Start", new StartRequest { Id = id, ExecId = execId }, StartResponse.Parser);

    private protected static async Task<TaskStatus> StatusAsync(ShimClient shim, string id, string execId = "") =>
        (await CallAsync(shim, "State", new StateRequest { Id = id, ExecId = execId }, StateResponse.Parser)).Status;

    private protected static Task<WaitResponse> WaitAsync(ShimClient shim, string id, string execId = "") =>
        CallAsync(shim, "Wait", new WaitRequest { Id = id, ExecId = execId }, WaitResponse.Parser);

    /// <summary>
    /// A round trip on the connection after a request that may block: both shims read requests off
    /// the connection in order and hand each to its own handler, so once this State of init (which
    /// never waits for an exec) is answered, the earlier request has reached its handler.
    /// </summary>
    private protected static Task RoundTripAsync(ShimClient shim, string id) => StatusAsync(shim, id);

    /// <summary>Awaits <paramref name="task"/> for at most <see cref="StepTimeout"/>, failing with what did not come.</summary>
    private protected async Task<T> WithinAsync<T>(Task<T> task, string what)
    {
        try { return await task.WaitAsync(StepTimeout, Ct); }
        catch (TimeoutException)
        {
            throw new TimeoutException($"{what}: nothing within {StepTimeout.TotalSeconds:0} s; wrapper record: {string.Join(" | ", Runc.Record())}");
        }
    }

    /// <summary>Starts an exec in the background and waits (bounded) until its runc exec is held.</summary>
    private protected async Task<Task<(StatusCode Code, string Message)>> StartHeldAsync(ShimClient shim, string id, string execId, ExecHold hold)
    {
        var entered = hold.EnteredAsync();
        var start = StartStatusAsync(shim, id, execId);
        var first = await Task.WhenAny(entered, start).WaitAsync(StepTimeout, Ct);
        if (first == start)
        {
            var (code, message) = await start;
            Assert.Fail($"Start of {execId} ended ({code}: {message}) before runc exec was entered; wrapper record: {string.Join(" | ", Runc.Record())}");
        }
        await entered;
        return start;
    }

    /// <summary>The pid of init of <paramref name="id"/>.</summary>
    private protected static async Task<int> InitPidAsync(ShimClient shim, string id) =>
        (int)(await CallAsync(shim, "State", new StateRequest { Id = id }, StateResponse.Parser)).Pid;

    public new async ValueTask DisposeAsync()
    {
        // nothing of the test stays blocked on a FIFO while the daemon cleans up, and no held runc
        // exec (the wrapper reads a go line from the propped FIFO and goes on)
        foreach (var hold in _holds) { hold.Prop(); }
        foreach (var stdio in _stdio) { stdio.Prop(); }
        await base.DisposeAsync();
        foreach (var hold in _holds) { hold.Unprop(); }
        foreach (var stdio in _stdio) { stdio.Unprop(); }
        _runc?.Dispose();
        GC.SuppressFinalize(this);
    }
}
