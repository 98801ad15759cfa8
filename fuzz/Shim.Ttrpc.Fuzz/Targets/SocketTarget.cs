using System.Net.Sockets;
using Google.Protobuf;
using Shim.Core.Errors;
using Shim.Core.Transport;
using Shim.Os.Io;
using Shim.Ttrpc.Wire;
using static Shim.Ttrpc.Fuzz.Targets.Fuzzing;

namespace Shim.Ttrpc.Fuzz.Targets;

/// <summary>
/// The server's read loop on a real unix socket, served as the shim serves (the io-loop listener
/// and sockets): one connection per input, the input written in pieces split at points the input
/// chooses, then either sent whole and half-closed once answered, half-closed early, or reset.
/// Every answer must be a well-formed Response on a stream the input opened (exactly the answers
/// the in-memory decoder predicts when sent whole), the server must close its side, its connection
/// count must come back, and a fresh client must still be served.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA5394:Do not use insecure randomness", Justification = "split points derived from the fuzz input, not secrets")]
internal sealed class SocketTarget : IAsyncDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);
    private readonly string _path;
    private readonly LoopListener _listener;
    private readonly TtrpcServer _server;
    private readonly Task _serving;
    private readonly TtrpcServiceRegistry _predictor = FuzzTaskService.NewRegistry();
    private readonly List<string> _log = [];
    private long _inputs;
    private long _made;       // connections this target opened to the server
    private long _admitted;   // connections the server has taken in (its accept filter saw them)

    public SocketTarget()
    {
        _path = Path.Combine(Fresh("socket"), "s.sock");
        _listener = LoopListener.Bind(IoLoop.Shared, _path);
        _server = new TtrpcServer(FuzzTaskService.NewRegistry(), new TtrpcServerOptions
        {
            AcceptFilter = _ =>
            {
                Interlocked.Increment(ref _admitted);
                return true;
            },
            ErrorMapper = StatusMapping.ToStatus,
            Log = m =>
            {
                lock (_log)
                {
                    _log.Add(m);
                }
            },
        });
        _serving = _server.ServeAsync(new LoopTtrpcListener(_listener), CancellationToken.None);
    }

    public static ByteTarget Target(SocketTarget socket) =>
        new("server-socket", "src/Shim.Ttrpc/ServerConnection.cs, FrameReader.cs, TtrpcServer.cs, StallSweep.cs; src/Shim.Os/Io/LoopSocket.cs", Seeds, socket.Run);

    public static IEnumerable<(string, byte[])> Seeds() =>
        FrameBuilder.Seeds().SelectMany(s => new[] { ($"whole-{s.Name}", (byte[])[0, 7, .. s.Bytes]), ($"halfclose-{s.Name}", [1, 3, .. s.Bytes]), ($"reset-{s.Name}", [2, 1, .. s.Bytes]) });

    /// <summary>Byte 0: how the input ends (whole, half-close, reset) and the piece-size seed; byte 1: the split seed.</summary>
    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.Length < 2)
        {
            return;
        }
        var run = RunAsync(input[0], input[1], input[2..].ToArray());
        if (!Ended(run, Deadline * 2))
        {
            throw new FuzzFailure($"the exchange did not end within {Deadline.TotalSeconds * 2} s (hang)");
        }
        run.GetAwaiter().GetResult();
    }

    private async Task RunAsync(byte mode, byte seed, byte[] stream)
    {
        var prediction = new Prediction();
        RequestDecoder.DecodeStream(stream, _predictor, prediction);
        int ending = mode % 3;
        var random = new Random(seed | (mode << 8));
        int cut = ending == 0 ? stream.Length : random.Next(stream.Length + 1);

        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        Interlocked.Increment(ref _made);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(_path)).ConfigureAwait(false);
        using var deadline = new CancellationTokenSource(Deadline);
        var answered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int expected = ending == 0 ? prediction.Answers.Count : int.MaxValue;
        var reading = ReadToEndAsync(socket, expected, answered, deadline.Token);
        try
        {
            // pieces of 1 to (mode/3 + 1) * 8 bytes, a yield between them: headers and payloads straddle reads
            int max = ((mode / 3) + 1) * 8;
            for (int at = 0; at < cut;)
            {
                int n = Math.Min(cut - at, 1 + random.Next(max));
                await socket.SendAsync(stream.AsMemory(at, n), SocketFlags.None, deadline.Token).ConfigureAwait(false);
                at += n;
                if (random.Next(4) == 0)
                {
                    await Task.Yield();
                }
            }
            if (ending == 0)
            {
                // the server cancels what still runs when its client leaves: wait for the answers first
                await Task.WhenAny(answered.Task, reading).WaitAsync(deadline.Token).ConfigureAwait(false);
            }
            if (ending == 2)
            {
                socket.LingerState = new LingerOption(true, 0);   // close sends a reset
                socket.Close();
            }
            else
            {
                socket.Shutdown(SocketShutdown.Send);
            }
        }
        catch (SocketException)
        {
            // the server may hang up first (an oversized or broken frame ends nothing, but a full
            // connection table or a reset does); what it sent is still checked
        }
        catch (ObjectDisposedException)
        {
        }
        catch (OperationCanceledException)
        {
            throw new FuzzFailure($"the server neither answered nor closed within {Deadline.TotalSeconds} s: {Hex(stream)}");
        }

        byte[] received;
        try
        {
            received = await reading.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            throw new FuzzFailure($"the server did not close the connection within {Deadline.TotalSeconds} s after the client's end: {Hex(stream)}");
        }
        CheckAnswers(received, prediction, exact: ending == 0, stream);
        await CheckServingAsync().ConfigureAwait(false);
    }

    /// <summary>Reads until the server closes; completes <paramref name="answered"/> once <paramref name="expected"/> whole frames arrived (the live-server fuzz tests read the same way).</summary>
    internal static async Task<byte[]> ReadToEndAsync(Socket socket, int expected, TaskCompletionSource answered, CancellationToken ct)
    {
        var all = new MemoryStream();
        var buffer = new byte[4096];
        int frames = 0;
        long parsed = 0;
        if (expected == 0)
        {
            answered.TrySetResult();
        }
        while (true)
        {
            int n;
            try
            {
                n = await socket.ReceiveAsync(buffer, SocketFlags.None, ct).ConfigureAwait(false);
            }
            catch (SocketException)
            {
                break;
            }
            catch (ObjectDisposedException)
            {
                break;   // our own reset
            }
            if (n == 0)
            {
                break;
            }
            await all.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
            var bytes = all.GetBuffer().AsSpan(0, (int)all.Length);
            while (bytes.Length - parsed >= FrameCodec.HeaderSize)
            {
                long end = parsed + FrameCodec.HeaderSize + FrameCodec.Read(bytes[(int)parsed..]).Length;
                if (end > bytes.Length)
                {
                    break;
                }
                parsed = end;
                if (++frames >= expected)
                {
                    answered.TrySetResult();
                }
            }
        }
        answered.TrySetResult();
        return all.ToArray();
    }

    private static void CheckAnswers(byte[] received, Prediction prediction, bool exact, byte[] input)
    {
        var owed = new List<uint>(prediction.Answers);
        var bytes = received.AsSpan();
        while (!bytes.IsEmpty)
        {
            Check(bytes.Length >= FrameCodec.HeaderSize, $"a partial answer header to {Hex(input)}");
            var header = FrameCodec.Read(bytes);
            Check(header.Type == FrameType.Response && header.Flags == 0 && !header.IsOversized, $"bad answer header {header} to {Hex(input)}");
            Check(bytes.Length >= FrameCodec.HeaderSize + header.Length, $"a partial answer frame to {Hex(input)}");
            byte[] payload = bytes.Slice(FrameCodec.HeaderSize, (int)header.Length).ToArray();
            _ = Expect("answer payload", () => Response.Parser.ParseFrom(payload), _ => false);
            bytes = bytes[(FrameCodec.HeaderSize + (int)header.Length)..];
            Check(owed.Remove(header.StreamId), $"an answer on stream {header.StreamId}, which the input did not open or was answered already: {Hex(input)}");
        }
        Check(!exact || owed.Count == 0, $"no answer on streams {string.Join(", ", owed)} of {Hex(input)}");
    }

    /// <summary>The connection is gone from the server, and a valid call on a fresh one is answered.</summary>
    private async Task CheckServingAsync()
    {
        // a client that reset or half-closed at once has read nothing, so the server may not have
        // accepted its connection yet: a count of 0 then says nothing until it has
        var until = DateTime.UtcNow + Deadline;
        while ((Interlocked.Read(ref _admitted) < Interlocked.Read(ref _made) || _server.ConnectionCount > 0) && DateTime.UtcNow < until)
        {
            await Task.Delay(1).ConfigureAwait(false);
        }
        Check(Interlocked.Read(ref _admitted) == Interlocked.Read(ref _made), $"the server took in {_admitted} of the {_made} connections made");
        Check(_server.ConnectionCount == 0, $"the server still holds {_server.ConnectionCount} connections after the client left");
        if (++_inputs % 64 != 1)
        {
            return;
        }
        Interlocked.Increment(ref _made);
        var client = await TtrpcClient.ConnectAsync(_path, CancellationToken.None).ConfigureAwait(false);
        await using (client.ConfigureAwait(false))
        {
            var connected = await client.CallAsync(FrameBuilder.Services[0], "Connect", new Containerd.Task.V2.ConnectRequest { Id = "c1" },
                Containerd.Task.V2.ConnectResponse.Parser, Deadline).ConfigureAwait(false);
            Check(connected.ShimPid == (uint)Environment.ProcessId, "Connect answered a wrong pid");
        }
        lock (_log)
        {
            Check(!_log.Any(m => m.Contains("unexpectedly", StringComparison.Ordinal) || m.Contains("mapper threw", StringComparison.Ordinal)),
                $"the server logged a failure: {string.Join(" | ", _log)}");
        }
    }

    private static string Hex(byte[] input) => Convert.ToHexString(input.AsSpan(0, Math.Min(input.Length, 512)));

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync().ConfigureAwait(false);
        await _serving.ConfigureAwait(false);
        _listener.Dispose();
    }

    /// <summary>The streams the server owes an answer (rejections and dispatched calls), in order.</summary>
    private sealed class Prediction : IDecodeSink
    {
        public List<uint> Answers { get; } = [];

        public void Rejected(uint streamId, StatusCode code, string message) => Answers.Add(streamId);

        public void Dispatched(uint streamId, Request request, MethodHandler handler, IMessage message) => Answers.Add(streamId);
    }
}
