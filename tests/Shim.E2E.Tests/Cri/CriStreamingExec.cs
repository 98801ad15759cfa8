using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace Shim.E2E.Tests.Cri;

/// <summary>What a streaming exec left behind once its connection ended.</summary>
/// <param name="ExitCode">From the status channel: 0 for "Success", the ExitCode cause of a
/// "NonZeroExitCode" failure; null when no status arrived or it carried no exit code.</param>
/// <param name="Status">The status channel's JSON as sent (empty when none arrived).</param>
internal sealed record StreamingExecResult(string Protocol, byte[] Stdout, byte[] Stderr, int? ExitCode, string Status)
{
    public string StdoutText => Encoding.UTF8.GetString(Stdout);

    public string StderrText => Encoding.UTF8.GetString(Stderr);

    public override string ToString() =>
        $"protocol {Protocol}, exit {(ExitCode?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none")}, stdout \"{StdoutText}\", stderr \"{StderrText}\", status {(Status.Length == 0 ? "none" : Status)}";
}

/// <summary>
/// The client end of a CRI streaming exec (what kubelet's proxy or crictl connects to the URL
/// that RuntimeService.Exec returns): Kubernetes' remotecommand protocol over a websocket. Every
/// message is one binary frame whose first byte is the channel: 0 stdin (client to server),
/// 1 stdout, 2 stderr, 3 status (the exec's final metav1.Status as JSON), 4 terminal resize.
/// <para>
/// We offer <c>v5.channel.k8s.io</c> first: it adds a CLOSE message (255, then the channel) that
/// half-closes stdin while the output keeps flowing. containerd's streaming server (kubelet's
/// pkg/cri/streaming, copied into containerd 1.6/1.7 and vendored from k8s.io/kubelet in 2.x)
/// does not offer v5 on any line up to 2.2: it settles on <c>v4.channel.k8s.io</c>, where stdin
/// ends only when the whole websocket does (the server then closes every channel: the process
/// sees EOF on stdin, its output and status are dropped). Only SPDY, which kube-apiserver
/// translates a v5 CLOSE into, half-closes stdin there.
/// </para>
/// </summary>
internal sealed class CriStreamingExec : IAsyncDisposable
{
    public const string V5 = "v5.channel.k8s.io";
    public const string V4 = "v4.channel.k8s.io";

    private const byte StdinChannel = 0;
    private const byte StdoutChannel = 1;
    private const byte StderrChannel = 2;
    private const byte StatusChannel = 3;
    private const byte CloseMessage = 255;

    private readonly ClientWebSocket _ws;
    private readonly MemoryStream _stdout = new();
    private readonly MemoryStream _stderr = new();
    private readonly StringBuilder _status = new();
    private readonly Lock _gate = new();
    private readonly Task _reader;
    private readonly CancellationTokenSource _stop = new();

    private CriStreamingExec(ClientWebSocket ws)
    {
        _ws = ws;
        Protocol = ws.SubProtocol ?? "";
        _reader = Task.Run(() => ReadLoopAsync(_stop.Token), CancellationToken.None);
    }

    /// <summary>The sub-protocol the server chose.</summary>
    public string Protocol { get; }

    /// <summary>True when stdin can be half-closed (v5's CLOSE message).</summary>
    public bool CanCloseStdin => Protocol == V5;

    /// <summary>
    /// Connects to the exec URL of RuntimeService.Exec (http://127.0.0.1:port/exec/token on our
    /// daemons; refused when it is not a loopback address: the tests talk to nothing else).
    /// </summary>
    public static async Task<CriStreamingExec> ConnectAsync(string url, CancellationToken ct)
    {
        var uri = new Uri(url);
        if (!IPAddress.TryParse(uri.Host, out var ip) || !IPAddress.IsLoopback(ip))
        {
            throw new InvalidOperationException($"CRI streaming URL {url} is not on a loopback address");
        }
        var ws = new ClientWebSocket();
        ws.Options.AddSubProtocol(V5);
        ws.Options.AddSubProtocol(V4);
        try
        {
            var b = new UriBuilder(uri) { Scheme = uri.Scheme == "https" ? "wss" : "ws" };
            await ws.ConnectAsync(b.Uri, ct);
            return new CriStreamingExec(ws);
        }
        catch
        {
            ws.Dispose();
            throw;
        }
    }

    /// <summary>Sends bytes to the process's stdin.</summary>
    public Task SendStdinAsync(byte[] data, CancellationToken ct) => SendAsync([StdinChannel, .. data], ct);

    /// <summary>Half-closes stdin (v5 only): the process reads EOF, its output still arrives.</summary>
    public Task CloseStdinAsync(CancellationToken ct) =>
        CanCloseStdin ? SendAsync([CloseMessage, StdinChannel], ct)
            : throw new NotSupportedException($"{Protocol} has no CLOSE message: stdin ends only with the connection");

    /// <summary>
    /// Ends the websocket from our side (close handshake). The server closes every channel: the
    /// process reads EOF on stdin (containerd then calls CloseIO on it), its output goes nowhere.
    /// </summary>
    public async Task CloseConnectionAsync(CancellationToken ct)
    {
        if (_ws.State == WebSocketState.Open)
        {
            await _ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "stdin done", ct);
        }
    }

    /// <summary>Waits until the server ends the connection (after the status message), then the result.</summary>
    public async Task<StreamingExecResult> ReadToEndAsync(CancellationToken ct)
    {
        await _reader.WaitAsync(ct);
        return Snapshot();
    }

    /// <summary>What has arrived so far (for a failure message).</summary>
    public StreamingExecResult Snapshot()
    {
        lock (_gate)
        {
            var status = _status.ToString();
            return new StreamingExecResult(Protocol, _stdout.ToArray(), _stderr.ToArray(), ExitCodeOf(status), status);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _ws.Abort();
        try { await _reader; }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException) { }
        _ws.Dispose();
        _stop.Dispose();
    }

    private async Task SendAsync(byte[] message, CancellationToken ct) =>
        await _ws.SendAsync(message, WebSocketMessageType.Binary, endOfMessage: true, ct);

    private async Task ReadLoopAsync(CancellationToken ct)
    {
        var buffer = new byte[64 * 1024];
        using var message = new MemoryStream();
        while (true)
        {
            WebSocketReceiveResult r;
            try { r = await _ws.ReceiveAsync(buffer, ct); }
            // the server may drop the TCP connection right after its close frame (x/net/websocket
            // closes it once the status is written): the end of the stream either way
            catch (WebSocketException) when (_ws.State is WebSocketState.Aborted or WebSocketState.Closed or WebSocketState.CloseReceived) { return; }
            catch (WebSocketException e) when (e.WebSocketErrorCode == WebSocketError.ConnectionClosedPrematurely) { return; }
            if (r.MessageType == WebSocketMessageType.Close) { return; }
            await message.WriteAsync(buffer.AsMemory(0, r.Count), ct);
            if (!r.EndOfMessage) { continue; }
            var frame = message.ToArray();
            message.SetLength(0);
            if (frame.Length == 0) { continue; }
            var data = frame.AsSpan(1);
            lock (_gate)
            {
                switch (frame[0])
                {
                    case StdoutChannel: _stdout.Write(data); break;
                    case StderrChannel: _stderr.Write(data); break;
                    case StatusChannel: _status.Append(Encoding.UTF8.GetString(data)); break;
                    default: break;   // nothing else is sent to a client
                }
            }
        }
    }

    /// <summary>
    /// The exit code in a v4/v5 status: {"status":"Success"} is 0; a non-zero exit is
    /// {"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}.
    /// </summary>
    internal static int? ExitCodeOf(string status)
    {
        if (status.Length == 0) { return null; }
        try
        {
            using var doc = JsonDocument.Parse(status);
            var root = doc.RootElement;
            if (root.TryGetProperty("status", out var s) && s.GetString() == "Success") { return 0; }
            if (root.TryGetProperty("details", out var details) && details.TryGetProperty("causes", out var causes))
            {
                foreach (var c in causes.EnumerateArray())
                {
                    if (c.TryGetProperty("reason", out var reason) && reason.GetString() == "ExitCode"
                        && c.TryGetProperty("message", out var m) && int.TryParse(m.GetString(), out var code))
                    {
                        return code;
                    }
                }
            }
        }
        catch (JsonException) { }
        return null;
    }
}
