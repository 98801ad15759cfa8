using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Shim.E2E.Tests.Cri;

/// <summary>
/// The client end of a CRI streaming exec over SPDY/3.1, the way kubelet's (or kube-apiserver's)
/// remotecommand client reaches containerd's streaming server: an HTTP upgrade to SPDY/3.1 with
/// <c>X-Stream-Protocol-Version: v4.channel.k8s.io</c>, then one SPDY stream per channel, each
/// opened by us with a <c>streamtype</c> header (error, stdin, stdout, stderr). Unlike the
/// websocket protocols containerd offers, a stream half-closes: a DATA frame with FIN on the
/// stdin stream is EOF for the process's stdin while stdout and the status keep coming. It is
/// how <c>kubectl exec -i</c> ends stdin (kube-apiserver turns a v5 websocket CLOSE into it).
/// <para>
/// Only what these tests need: no flow control (a few bytes each way), the server's header
/// blocks are skipped unread (they carry nothing we use), ours go out as zlib "stored" blocks,
/// each followed by a sync-flush marker (valid in SPDY's shared zlib stream without the preset
/// dictionary, which the reader only needs when a block refers to it).
/// </para>
/// </summary>
internal sealed class CriSpdyExec : IAsyncDisposable
{
    public const string ProtocolName = "SPDY/3.1 " + CriStreamingExec.V4;

    private const ushort Version = 3;
    private const ushort SynStream = 1, SynReply = 2, RstStream = 3, Ping = 6, GoAway = 7;
    private const byte FlagFin = 0x01;
    private const uint ErrorStream = 1, StdinStream = 3, StdoutStream = 5, StderrStream = 7;

    private readonly Socket _socket;
    private readonly NetworkStream _net;
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private readonly MemoryStream _stdout = new();
    private readonly MemoryStream _stderr = new();
    private readonly StringBuilder _status = new();
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stop = new();
    private Task _reader = Task.CompletedTask;
    private bool _zlibHeaderSent;
    private string _end = "";

    private CriSpdyExec(Socket socket)
    {
        _socket = socket;
        _net = new NetworkStream(socket, ownsSocket: false);
    }

    /// <summary>
    /// Connects to the exec URL of RuntimeService.Exec (loopback only), upgrades to SPDY and opens
    /// the error, stdin, stdout and stderr streams, as the ExecRequest asked for all of them.
    /// </summary>
    public static async Task<CriSpdyExec> ConnectAsync(string url, CancellationToken ct)
    {
        var uri = new Uri(url);
        if (!IPAddress.TryParse(uri.Host, out var ip) || !IPAddress.IsLoopback(ip) || uri.Scheme != "http")
        {
            throw new InvalidOperationException($"CRI streaming URL {url} is not plain http on a loopback address");
        }
        var socket = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try { await socket.ConnectAsync(new IPEndPoint(ip, uri.Port), ct); }
        catch
        {
            socket.Dispose();
            throw;
        }
        var exec = new CriSpdyExec(socket);
        try
        {
            await exec.UpgradeAsync(uri, ct);
            exec._reader = Task.Run(() => exec.ReadLoopAsync(exec._stop.Token), CancellationToken.None);   // lives until disposal, not the connect call
            // the error stream first, as client-go does: the server waits for all four (its
            // stream-creation timeout) before it starts the process
            foreach (var (id, type) in new[] { (ErrorStream, "error"), (StdinStream, "stdin"), (StdoutStream, "stdout"), (StderrStream, "stderr") })
            {
                await exec.SendSynStreamAsync(id, type, ct);
            }
            return exec;
        }
        catch
        {
            await exec.DisposeAsync();
            throw;
        }
    }

    /// <summary>Sends bytes to the process's stdin.</summary>
    public Task SendStdinAsync(byte[] data, CancellationToken ct) => SendDataAsync(StdinStream, data, fin: false, ct);

    /// <summary>Half-closes stdin (FIN on its stream): the process reads EOF, its output still arrives.</summary>
    public Task CloseStdinAsync(CancellationToken ct) => SendDataAsync(StdinStream, [], fin: true, ct);

    /// <summary>Waits until the server ends the session (GOAWAY after the status, or end of the connection).</summary>
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
            var protocol = _end.Length == 0 ? ProtocolName : $"{ProtocolName} ({_end})";
            return new StreamingExecResult(protocol, _stdout.ToArray(), _stderr.ToArray(), CriStreamingExec.ExitCodeOf(status), status);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _socket.Dispose();
        try { await _reader; }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException) { }
        await _net.DisposeAsync();
        _writeGate.Dispose();
        _stop.Dispose();
    }

    private async Task UpgradeAsync(Uri uri, CancellationToken ct)
    {
        var request = $"POST {uri.PathAndQuery} HTTP/1.1\r\nHost: {uri.Authority}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                      + $"X-Stream-Protocol-Version: {CriStreamingExec.V4}\r\nContent-Length: 0\r\n\r\n";
        await _net.WriteAsync(Encoding.ASCII.GetBytes(request), ct);
        // the response head, byte by byte: SPDY frames may follow right after it
        var head = new List<byte>();
        var one = new byte[1];
        while (head.Count < 4 || head[^4] != '\r' || head[^3] != '\n' || head[^2] != '\r' || head[^1] != '\n')
        {
            if (await _net.ReadAsync(one, ct) == 0) { throw new IOException($"streaming server closed the connection during the upgrade: \"{Encoding.ASCII.GetString([.. head])}\""); }
            head.Add(one[0]);
            if (head.Count > 16384) { throw new IOException("no end of the upgrade response in 16 KiB"); }
        }
        var text = Encoding.ASCII.GetString([.. head]);
        if (!text.StartsWith("HTTP/1.1 101", StringComparison.Ordinal)
            || !text.Contains($"X-Stream-Protocol-Version: {CriStreamingExec.V4}", StringComparison.OrdinalIgnoreCase))
        {
            throw new IOException($"streaming server refused the SPDY upgrade: {text.Trim()}");
        }
    }

    private async Task SendSynStreamAsync(uint streamId, string streamType, CancellationToken ct)
    {
        // name/value block: count, then length-prefixed lower-case name and value
        var name = "streamtype"u8.ToArray();
        var value = Encoding.ASCII.GetBytes(streamType);
        var nv = new byte[4 + 4 + name.Length + 4 + value.Length];
        BinaryPrimitives.WriteUInt32BigEndian(nv, 1);
        BinaryPrimitives.WriteUInt32BigEndian(nv.AsSpan(4), (uint)name.Length);
        name.CopyTo(nv, 8);
        BinaryPrimitives.WriteUInt32BigEndian(nv.AsSpan(8 + name.Length), (uint)value.Length);
        value.CopyTo(nv, 12 + name.Length);

        await _writeGate.WaitAsync(ct);
        try
        {
            // one zlib stream per direction for the whole session: its 2-byte header once (no
            // preset dictionary flag), then per frame a non-final stored block with the block
            // and an empty one, the marker of a zlib sync flush (Go's inflater hands out what
            // it has at that marker; without it the block's bytes wait for the next frame)
            var z = new List<byte>();
            if (!_zlibHeaderSent) { z.AddRange([0x78, 0x01]); _zlibHeaderSent = true; }
            z.Add(0x00);
            z.AddRange([(byte)nv.Length, (byte)(nv.Length >> 8), (byte)~nv.Length, (byte)(~nv.Length >> 8)]);
            z.AddRange(nv);
            z.AddRange([0x00, 0x00, 0x00, 0xff, 0xff]);

            var frame = new byte[8 + 10 + z.Count];
            WriteControlHeader(frame, SynStream, flags: 0, length: 10 + z.Count);
            BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(8), streamId);
            BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(12), 0);   // associated stream
            frame[16] = 0;   // priority (3 bits) and unused
            frame[17] = 0;   // slot
            z.CopyTo(frame, 18);
            await _net.WriteAsync(frame, ct);
        }
        finally { _writeGate.Release(); }
    }

    private async Task SendDataAsync(uint streamId, byte[] data, bool fin, CancellationToken ct)
    {
        var frame = new byte[8 + data.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame, streamId & 0x7fffffff);
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(4), ((uint)(fin ? FlagFin : 0) << 24) | (uint)data.Length);
        data.CopyTo(frame, 8);
        await WriteFrameAsync(frame, ct);
    }

    private async Task WriteFrameAsync(byte[] frame, CancellationToken ct)
    {
        await _writeGate.WaitAsync(ct);
        try { await _net.WriteAsync(frame, ct); }
        finally { _writeGate.Release(); }
    }

    private static void WriteControlHeader(Span<byte> frame, ushort type, byte flags, int length)
    {
        BinaryPrimitives.WriteUInt16BigEndian(frame, (ushort)(0x8000 | Version));
        BinaryPrimitives.WriteUInt16BigEndian(frame[2..], type);
        BinaryPrimitives.WriteUInt32BigEndian(frame[4..], ((uint)flags << 24) | (uint)length);
    }

    private async Task ReadLoopAsync(CancellationToken ct)
    {
        var header = new byte[8];
        while (true)
        {
            try { await _net.ReadExactlyAsync(header, ct); }
            catch (EndOfStreamException) { End("connection closed"); return; }
            var length = (int)(BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(4)) & 0xffffff);
            var payload = new byte[length];
            try { await _net.ReadExactlyAsync(payload, ct); }
            catch (EndOfStreamException) { End("connection closed inside a frame"); return; }
            if ((header[0] & 0x80) == 0)
            {
                var streamId = BinaryPrimitives.ReadUInt32BigEndian(header) & 0x7fffffff;
                lock (_gate)
                {
                    switch (streamId)
                    {
                        case StdoutStream: _stdout.Write(payload); break;
                        case StderrStream: _stderr.Write(payload); break;
                        case ErrorStream: _status.Append(Encoding.UTF8.GetString(payload)); break;
                        default: break;
                    }
                }
                continue;
            }
            switch (BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(2)))
            {
                case Ping:
                    var pong = new byte[12];
                    WriteControlHeader(pong, Ping, 0, 4);
                    payload.AsSpan(0, 4).CopyTo(pong.AsSpan(8));
                    await WriteFrameAsync(pong, ct);
                    break;
                case GoAway:
                    // the server's Close after the status: every frame it sent came before this
                    End("GOAWAY");
                    return;
                case RstStream:
                    var id = BinaryPrimitives.ReadUInt32BigEndian(payload) & 0x7fffffff;
                    Note($"stream {id} reset, status {BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(4))}");
                    break;
                case SynReply:
                default:
                    break;   // replies, settings, window updates: nothing these tests need
            }
        }
    }

    /// <summary>How the session ended, unless by GOAWAY (shown with the result).</summary>
    private void End(string how)
    {
        lock (_gate) { _end = how == "GOAWAY" ? _end : (_end.Length == 0 ? how : $"{_end}; {how}"); }
    }

    /// <summary>Something unusual the server did (shown with the result).</summary>
    private void Note(string what)
    {
        lock (_gate) { _end = _end.Length == 0 ? what : $"{_end}; {what}"; }
    }
}
