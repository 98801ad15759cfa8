using System.Net.Sockets;
using Containerd.Services.Events.Ttrpc.V1;
using Containerd.Types;
using Google.Protobuf.WellKnownTypes;
using Shim.Ttrpc;

namespace Shim.E2E.Tests;

/// <summary>
/// A ttrpc events service between a shim and the real containerd: every Forward whose envelope
/// matches <c>reject</c> is answered with a chosen non-OK status (as containerd would answer a
/// request it refuses), every other one goes on to containerd's ttrpc socket as it came (same
/// envelope, same metadata) and containerd's answer goes back. A shim publishes to the socket in
/// its TTRPC_ADDRESS (containerd's pkg/shim reads it), so <see cref="WrappedShim"/> points it here.
/// </summary>
internal sealed class EventForwardProxy : IAsyncDisposable
{
    /// <summary>The ttrpc service and method a shim forwards events with (containerd api/services/ttrpc/events/v1).</summary>
    private const string Service = "containerd.services.events.ttrpc.v1.Events";
    private const string Method = "Forward";

    /// <summary>The words every rejection carries, so a test can find them in the shim's log.</summary>
    public const string RejectionText = "rcs-e2e events proxy refused this event on purpose";

    private readonly string _upstream;
    private readonly Func<Envelope, bool> _reject;
    private readonly StatusCode _code;
    private readonly Socket _listener;
    private readonly TtrpcServer _server;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _serving;
    private readonly SemaphoreSlim _connect = new(1, 1);
    private readonly Lock _gate = new();
    private readonly List<Envelope> _rejected = [];   // guarded by _gate
    private readonly List<Envelope> _forwarded = [];  // guarded by _gate
    private readonly List<string> _history = [];      // guarded by _gate
    private TtrpcClient? _client;                     // guarded by _connect

    private EventForwardProxy(string socketPath, string upstream, Func<Envelope, bool> reject, StatusCode code)
    {
        SocketPath = socketPath;
        _upstream = upstream;
        _reject = reject;
        _code = code;
        var registry = new TtrpcServiceRegistry();
        registry.Register<ForwardRequest, Empty>(Service, Method, ForwardRequest.Parser, ForwardAsync);
        _server = new TtrpcServer(registry);
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            _listener.Bind(new UnixDomainSocketEndPoint(socketPath));
            _listener.Listen(16);
        }
        catch
        {
            _listener.Dispose();
            throw;
        }
        _serving = _server.ServeAsync(_listener, _stop.Token);
    }

    /// <summary>The socket shims publish to instead of containerd's.</summary>
    public string SocketPath { get; }

    /// <summary>
    /// Listens on <paramref name="socketPath"/>, forwarding to the ttrpc socket of <paramref name="ctrd"/>;
    /// answers each Forward whose envelope matches <paramref name="reject"/> with <paramref name="code"/>.
    /// </summary>
    public static EventForwardProxy Start(string socketPath, PrivateContainerd ctrd, Func<Envelope, bool> reject, StatusCode code) =>
        new(socketPath, ctrd.Socket + ".ttrpc", reject, code);

    /// <summary>Every Forward answered with the rejection, in arrival order (a shim's retries included).</summary>
    public IReadOnlyList<Envelope> Rejected
    {
        get { lock (_gate) { return [.. _rejected]; } }
    }

    /// <summary>Every Forward containerd accepted through this proxy, in arrival order.</summary>
    public IReadOnlyList<Envelope> Forwarded
    {
        get { lock (_gate) { return [.. _forwarded]; } }
    }

    /// <summary>One line per Forward: when it came, its topic and what became of it (for test output).</summary>
    public string History
    {
        get { lock (_gate) { return string.Join('\n', _history); } }
    }

    private async ValueTask<Empty> ForwardAsync(ForwardRequest request, TtrpcCallContext call)
    {
        var envelope = request.Envelope;
        var arrived = DateTime.UtcNow;
        if (_reject(envelope))
        {
            Record(arrived, envelope, $"rejected with {_code}", _rejected);
            throw new TtrpcException(_code, $"{RejectionText} ({envelope.Topic})");
        }
        try
        {
            var client = await UpstreamAsync(call.CancellationToken);
            // containerd's answer, an error status included, goes back to the shim as it is
            await client.CallAsync(Service, Method, request, Empty.Parser, TimeSpan.FromSeconds(10), call.Metadata, call.CancellationToken);
        }
        catch (Exception e)
        {
            Record(arrived, envelope, $"failed: {e.GetType().Name}: {e.Message}", null);
            throw;
        }
        Record(arrived, envelope, "forwarded", _forwarded);
        return new Empty();
    }

    private void Record(DateTime arrived, Envelope envelope, string outcome, List<Envelope>? list)
    {
        lock (_gate)
        {
            list?.Add(envelope);
            _history.Add($"{arrived:HH:mm:ss.fff} {envelope.Topic} {outcome}");
        }
    }

    private async Task<TtrpcClient> UpstreamAsync(CancellationToken ct)
    {
        await _connect.WaitAsync(ct);
        try
        {
            if (_client is { IsClosed: false }) { return _client; }
            if (_client is not null) { await _client.DisposeAsync(); }
            _client = null;
            _client = await TtrpcClient.ConnectAsync(_upstream, ct);
            return _client;
        }
        finally { _connect.Release(); }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _server.DisposeAsync();
        try { await _serving; }
        catch (OperationCanceledException) { }
        _listener.Dispose();
        try { File.Delete(SocketPath); } catch (IOException) { }
        if (_client is not null) { await _client.DisposeAsync(); }
        _connect.Dispose();
        _stop.Dispose();
    }
}
