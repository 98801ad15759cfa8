using Containerd.Task.V2;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Shim.Ttrpc.Transport;
using Shim.Ttrpc.Wire;
using static Shim.Ttrpc.Fuzz.Targets.Fuzzing;

namespace Shim.Ttrpc.Fuzz.Targets;

/// <summary>
/// The ttrpc client's response decoding (the shim's event publisher talks to containerd with it):
/// the input is what a broken or hostile server sends back, delivered in chunks once the client's
/// calls are on the wire. Every call must end, with its response or a <see cref="TtrpcException"/>,
/// the client must notice the end of the stream, and nothing else may be thrown.
/// </summary>
internal static class ClientTarget
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    public static ByteTarget Target => new("client-responses", "src/Shim.Ttrpc/TtrpcClient.cs, FrameReader.cs", Seeds, Run);

    private static IEnumerable<(string, byte[])> Seeds()
    {
        var state = new StateResponse { Id = "c1", Bundle = "/b", Pid = 42, Status = Containerd.Types.Task.Status.Running, ExitedAt = new Timestamp { Seconds = 1 } };
        var pids = new PidsResponse { Processes = { new Containerd.Types.Task.ProcessInfo { Pid = 7, Info = Any.Pack(new Containerd.Runc.V1.ProcessDetails { ExecId = "e1" }) } } };
        yield return ("ok", [4, .. Ok(1, state), .. Ok(3, new ConnectResponse { ShimPid = 1, TaskPid = 2 }), .. Ok(5, pids), .. Ok(7, new Empty())]);
        yield return ("errors", [2, .. Status(3, 5, "not found"), .. Status(1, 2, "")]);
        yield return ("out-of-order", [3, .. Ok(5, pids), .. FrameBuilder.Frame(9, 2, []), .. Ok(1, state), .. FrameBuilder.Frame(3, 3, "data"u8)]);
        yield return ("oversized", [1, .. FrameBuilder.Header(FrameCodec.MaxPayload + 1, 1, 2, 0), .. Ok(1, state)]);
        yield return ("bad-payload", [1, .. FrameBuilder.Frame(1, 2, new Response { Payload = ByteString.CopyFrom(0xFF, 0xFF) }.ToByteArray())]);
        yield return ("half-header", [1, 0, 0, 0]);
    }

    private static byte[] Ok(uint stream, IMessage message) =>
        FrameBuilder.Frame(stream, (byte)FrameType.Response, new Response { Payload = message.ToByteString() }.ToByteArray());

    private static byte[] Status(uint stream, int code, string message) =>
        FrameBuilder.Frame(stream, (byte)FrameType.Response, new Response { Status = new Shim.Ttrpc.Wire.Status { Code = code, Message = message } }.ToByteArray());

    /// <summary>Byte 0: how many calls (1-4, low bits) and the chunk size seed; the rest comes from the "server".</summary>
    public static void Run(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty)
        {
            return;
        }
        int calls = 1 + (input[0] & 3);
        var connection = new ScriptedConnection(input[1..].ToArray(), chunk: 1 + (input[0] >> 2), afterWrites: calls);
        var run = RunAsync(connection, calls);
        if (!Ended(run, Deadline))
        {
            throw new FuzzFailure($"the client did not finish {calls} calls within {Deadline.TotalSeconds} s of the server's EOF (hang)");
        }
        run.GetAwaiter().GetResult();
    }

    private static async Task RunAsync(ScriptedConnection connection, int calls)
    {
        var client = new TtrpcClient(connection);
        await using (client.ConfigureAwait(false))
        {
            var tasks = new List<Task>();
            for (int i = 0; i < calls; i++)
            {
                // the calls run one after the other up to the write, so stream ids go 1, 3, 5, 7 as in the seeds
                tasks.Add((i % 4) switch
                {
                    0 => Call(client, "State", new StateRequest { Id = "c1" }, StateResponse.Parser),
                    1 => Call(client, "Connect", new ConnectRequest { Id = "c1" }, ConnectResponse.Parser),
                    2 => Call(client, "Pids", new PidsRequest { Id = "c1" }, PidsResponse.Parser),
                    _ => Call(client, "Forward", new Empty(), Empty.Parser),
                });
                await Task.WhenAny(connection.WrittenAsync(i + 1), tasks[i]).ConfigureAwait(false);
            }
            await Task.WhenAll(tasks).ConfigureAwait(false);
            await client.Closed.WaitAsync(Deadline).ConfigureAwait(false);
            Check(client.IsClosed, "the client did not see the end of the stream");
        }
    }

    private static async Task Call<TRequest, TResponse>(TtrpcClient client, string method, TRequest request, MessageParser<TResponse> parser)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse>
    {
        try
        {
            var response = await client.CallAsync("containerd.task.v2.Task", method, request, parser, CallTimeout).ConfigureAwait(false);
            _ = response.CalculateSize();
        }
        catch (TtrpcException ex)
        {
            Check(ex.Message.Length > 0 || ex.Code != StatusCode.OK, $"{method}: TtrpcException with code OK and no message");
        }
        catch (Exception ex)
        {
            throw new FuzzFailure($"{method}: unexpected {ex.GetType().Name}: {ex.Message}", ex);
        }
    }

    /// <summary>A connection whose reads return <c>script</c> in chunks once the client wrote enough calls, then EOF.</summary>
    private sealed class ScriptedConnection(byte[] script, int chunk, int afterWrites) : ITtrpcConnection
    {
        private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Lock _gate = new();
        private readonly List<(int Count, TaskCompletionSource Done)> _waiters = [];
        private int _writes;
        private int _offset;
        private volatile bool _closed;

        public async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct)
        {
            await _ready.Task.WaitAsync(ct).ConfigureAwait(false);
            ObjectDisposedException.ThrowIf(_closed, this);
            int n = Math.Min(Math.Min(chunk, buffer.Length), script.Length - _offset);
            script.AsMemory(_offset, n).CopyTo(buffer);
            _offset += n;
            return n;
        }

        public ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct)
        {
            lock (_gate)
            {
                _writes++;
                foreach (var (count, done) in _waiters.Where(w => w.Count <= _writes))
                {
                    done.TrySetResult();
                }
                if (_writes >= afterWrites)
                {
                    _ready.TrySetResult();
                }
            }
            return ValueTask.CompletedTask;
        }

        /// <summary>Completes once <paramref name="count"/> frames were written.</summary>
        public Task WrittenAsync(int count)
        {
            lock (_gate)
            {
                if (_writes >= count)
                {
                    return Task.CompletedTask;
                }
                var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiters.Add((count, done));
                return done.Task;
            }
        }

        public void Close()
        {
            _closed = true;
            _ready.TrySetResult();
        }
    }
}
