using System.Net.Sockets;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Shim.Ttrpc.Wire;

namespace Shim.Ttrpc.Tests;

/// <summary>Client behaviour against a hand-driven server socket.</summary>
public sealed class ClientTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("ttrpc-client-").FullName;
    private Socket _serverSide = null!;
    private RawConnection _server = null!;
    private TtrpcClient _client = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        var path = Path.Combine(_directory, "c.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        var connecting = TtrpcClient.ConnectAsync(path, Ct);
        _serverSide = await listener.AcceptAsync(Ct);
        _server = new RawConnection(_serverSide);
        _client = await connecting;
    }

    public async ValueTask DisposeAsync()
    {
        await _client.DisposeAsync();
        _server.Dispose();
        _serverSide.Dispose(); // the raw connection reads and writes it; the socket is the test's
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task Stream_ids_are_odd_start_at_one_and_grow_by_two()
    {
        var calls = new List<Task<StringValue>>();
        for (int i = 0; i < 3; i++)
        {
            calls.Add(_client.CallAsync("s", "m", new StringValue { Value = $"{i}" }, StringValue.Parser, ct: Ct));
        }

        var ids = new List<uint>();
        for (int i = 0; i < 3; i++)
        {
            var (id, request) = await ReadRequestAsync();
            ids.Add(id);
            Assert.Equal("s", request.Service);
            Assert.Equal("m", request.Method);
        }

        Assert.Equal([1u, 3u, 5u], ids);

        // Answer out of order; each caller gets its own reply.
        foreach (var id in new uint[] { 5, 1, 3 })
        {
            await SendResponseAsync(id, new Response { Payload = new StringValue { Value = $"r{id}" }.ToByteString() });
        }

        var replies = await Task.WhenAll(calls);
        Assert.Equal(["r1", "r3", "r5"], replies.Select(r => r.Value));
    }

    [Fact]
    public async Task A_timeout_is_sent_as_timeout_nano_along_with_metadata()
    {
        var call = _client.CallAsync("s", "m", new Empty(), Empty.Parser, timeout: TimeSpan.FromSeconds(2),
            metadata: [new("containerd-namespace-ttrpc", "default")], ct: Ct);

        var (id, request) = await ReadRequestAsync();
        Assert.Equal(2_000_000_000, request.TimeoutNano);
        Assert.Equal("default", Assert.Single(request.Metadata).Value);

        await SendResponseAsync(id, new Response());
        await call;
    }

    [Fact]
    public async Task A_non_OK_status_throws_with_the_servers_code_and_message()
    {
        var call = _client.CallAsync("s", "m", new Empty(), Empty.Parser, ct: Ct);
        var (id, _) = await ReadRequestAsync();
        await SendResponseAsync(id, new Response { Status = new Status { Code = 5, Message = "container not created" } });

        var ex = await Assert.ThrowsAsync<TtrpcException>(() => call);
        Assert.Equal(StatusCode.NotFound, ex.Code);
        Assert.Equal("container not created", ex.Message);
    }

    [Fact]
    public async Task An_oversized_response_fails_its_call_and_the_client_stays_usable()
    {
        var first = _client.CallAsync("s", "m", new Empty(), Empty.Parser, ct: Ct);
        var (id, _) = await ReadRequestAsync();

        const int length = FrameCodec.MaxPayload + 10;
        await _server.SendAsync(RawConnection.Header(length, id, (byte)FrameType.Response));
        var chunk = new byte[64 * 1024];
        for (int sent = 0; sent < length; sent += chunk.Length)
        {
            await _server.SendAsync(chunk.AsMemory(0, Math.Min(chunk.Length, length - sent)));
        }

        var ex = await Assert.ThrowsAsync<TtrpcException>(() => first);
        Assert.Equal(StatusCode.ResourceExhausted, ex.Code);

        var second = _client.CallAsync("s", "m", new StringValue { Value = "x" }, StringValue.Parser, ct: Ct);
        var (id2, _) = await ReadRequestAsync();
        await SendResponseAsync(id2, new Response { Payload = new StringValue { Value = "ok" }.ToByteString() });
        Assert.Equal("ok", (await second).Value);
    }

    [Fact]
    public async Task An_oversized_request_is_refused_without_touching_the_connection()
    {
        var huge = new BytesValue { Value = ByteString.CopyFrom(new byte[FrameCodec.MaxPayload]) };

        var ex = await Assert.ThrowsAsync<TtrpcException>(() => _client.CallAsync("s", "m", huge, Empty.Parser, ct: Ct));

        Assert.Equal(StatusCode.ResourceExhausted, ex.Code);
        Assert.False(_client.IsClosed);
    }

    [Fact]
    public async Task Cancelling_a_call_throws_operation_cancelled_and_ignores_the_late_answer()
    {
        using var cts = new CancellationTokenSource();
        var call = _client.CallAsync("s", "m", new Empty(), Empty.Parser, ct: cts.Token);
        var (id, _) = await ReadRequestAsync();
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        await SendResponseAsync(id, new Response());

        var next = _client.CallAsync("s", "m", new Empty(), Empty.Parser, ct: Ct);
        var (id2, _) = await ReadRequestAsync();
        Assert.Equal(id + 2, id2);
        await SendResponseAsync(id2, new Response());
        await next;
    }

    [Fact]
    public async Task A_server_hanging_up_fails_pending_calls_with_unavailable()
    {
        var call = _client.CallAsync("s", "m", new Empty(), Empty.Parser, ct: Ct);
        await ReadRequestAsync();
        _serverSide.Shutdown(SocketShutdown.Both);

        var ex = await Assert.ThrowsAsync<TtrpcException>(() => call);
        Assert.Equal(StatusCode.Unavailable, ex.Code);
        await _client.Closed.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.True(_client.IsClosed);
    }

    private async Task<(uint StreamId, Request Request)> ReadRequestAsync()
    {
        var header = new byte[FrameCodec.HeaderSize];
        await ReadExactlyAsync(header);
        var decoded = FrameCodec.Read(header);
        Assert.Equal(FrameType.Request, decoded.Type);
        var payload = new byte[decoded.Length];
        await ReadExactlyAsync(payload);
        return (decoded.StreamId, Request.Parser.ParseFrom(payload));
    }

    private Task SendResponseAsync(uint streamId, Response response) =>
        _server.SendFrameAsync(streamId, (byte)FrameType.Response, response.ToByteArray());

    private async Task ReadExactlyAsync(byte[] buffer)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = await _serverSide.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, Ct);
            Assert.NotEqual(0, n);
            read += n;
        }
    }
}
