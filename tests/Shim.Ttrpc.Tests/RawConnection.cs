using System.Net.Sockets;
using Google.Protobuf;
using Shim.Ttrpc.Wire;

namespace Shim.Ttrpc.Tests;

/// <summary>A socket speaking hand-built frames, for what a well-behaved client would never send.</summary>
internal sealed class RawConnection : IDisposable
{
    private static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(10);

    public RawConnection(Socket socket)
    {
        Socket = socket;
    }

    public Socket Socket { get; }

    public static byte[] Header(uint length, uint streamId, byte type, byte flags = 0)
    {
        var bytes = new byte[FrameCodec.HeaderSize];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes, length);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(4), streamId);
        bytes[8] = type;
        bytes[9] = flags;
        return bytes;
    }

    public static Request Request(string method, IMessage payload, long timeoutNano = 0) => new()
    {
        Service = TestServer.Service,
        Method = method,
        Payload = payload.ToByteString(),
        TimeoutNano = timeoutNano,
    };

    public Task SendAsync(byte[] bytes) => SendAsync(bytes.AsMemory());

    public async Task SendAsync(ReadOnlyMemory<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            int n = await Socket.SendAsync(bytes, SocketFlags.None, TestContext.Current.CancellationToken);
            bytes = bytes[n..];
        }
    }

    public Task SendFrameAsync(uint streamId, byte type, byte[] payload) =>
        SendAsync([.. Header((uint)payload.Length, streamId, type), .. payload]);

    public Task SendRequestAsync(uint streamId, Request request) =>
        SendFrameAsync(streamId, (byte)FrameType.Request, request.ToByteArray());

    /// <summary>Reads the next frame, which must be a Response, and decodes its envelope.</summary>
    public async Task<(uint StreamId, Response Response)> ReadResponseAsync()
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(ReadTimeout);
        var header = new byte[FrameCodec.HeaderSize];
        await ReadExactlyAsync(header, timeout.Token);
        var decoded = FrameCodec.Read(header);
        Assert.Equal(FrameType.Response, decoded.Type);
        var payload = new byte[decoded.Length];
        await ReadExactlyAsync(payload, timeout.Token);
        return (decoded.StreamId, Wire.Response.Parser.ParseFrom(payload));
    }

    /// <summary>True when the peer has closed the connection (reads end) within the timeout.</summary>
    public async Task<bool> PeerClosedAsync()
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(ReadTimeout);
        var sink = new byte[256];
        try
        {
            while (await Socket.ReceiveAsync(sink, SocketFlags.None, timeout.Token) > 0)
            {
            }

            return true;
        }
        catch (SocketException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public void Dispose() => Socket.Dispose();

    private async Task ReadExactlyAsync(Memory<byte> destination, CancellationToken ct)
    {
        while (!destination.IsEmpty)
        {
            int n = await Socket.ReceiveAsync(destination, SocketFlags.None, ct);
            if (n == 0)
            {
                throw new EndOfStreamException("server closed the connection");
            }

            destination = destination[n..];
        }
    }
}
