using Google.Protobuf.WellKnownTypes;
using Shim.Ttrpc.Wire;

namespace Shim.Ttrpc.Tests;

public sealed class ServerFramingTests
{
    private const byte RequestType = (byte)FrameType.Request;

    private static Request Echo(string value) => RawConnection.Request("Echo", new StringValue { Value = value });

    private static async Task AssertEchoWorksAsync(RawConnection raw, uint streamId, string value)
    {
        await raw.SendRequestAsync(streamId, Echo(value));
        var (id, response) = await raw.ReadResponseAsync();
        Assert.Equal(streamId, id);
        Assert.Equal(0, response.Status?.Code ?? 0);
        Assert.Equal(value, StringValue.Parser.ParseFrom(response.Payload).Value);
    }

    [Fact]
    public async Task A_malformed_request_envelope_gets_invalid_argument_and_the_connection_keeps_serving()
    {
        await using var server = new TestServer(TestServer.EchoRegistry());
        using var raw = await server.ConnectRawAsync();

        // 0x0A claims a length-delimited field 1 of 0x7F bytes, but only two follow.
        await raw.SendFrameAsync(1, RequestType, [0x0A, 0x7F, 0x41, 0x42]);
        var (id, response) = await raw.ReadResponseAsync();

        Assert.Equal(1u, id);
        Assert.Equal((int)StatusCode.InvalidArgument, response.Status.Code);
        await AssertEchoWorksAsync(raw, 3, "after");
    }

    [Fact]
    public async Task A_malformed_typed_payload_gets_invalid_argument_and_the_connection_keeps_serving()
    {
        await using var server = new TestServer(TestServer.EchoRegistry());
        using var raw = await server.ConnectRawAsync();

        var request = Echo("x");
        request.Payload = Google.Protobuf.ByteString.CopyFrom(0x0A, 0x10, 0x41);   // truncated string field
        await raw.SendRequestAsync(1, request);
        var (id, response) = await raw.ReadResponseAsync();

        Assert.Equal(1u, id);
        Assert.Equal((int)StatusCode.InvalidArgument, response.Status.Code);
        await AssertEchoWorksAsync(raw, 3, "after");
    }

    [Fact]
    public async Task An_oversized_frame_gets_resource_exhausted_on_its_stream_and_the_connection_keeps_serving()
    {
        await using var server = new TestServer(TestServer.EchoRegistry());
        using var raw = await server.ConnectRawAsync();
        const int length = FrameCodec.MaxPayload + 1;

        await raw.SendAsync(RawConnection.Header(length, 5, RequestType));
        var chunk = new byte[64 * 1024];
        for (int sent = 0; sent < length; sent += chunk.Length)
        {
            await raw.SendAsync(chunk.AsMemory(0, Math.Min(chunk.Length, length - sent)));
        }

        var (id, response) = await raw.ReadResponseAsync();
        Assert.Equal(5u, id);
        Assert.Equal((int)StatusCode.ResourceExhausted, response.Status.Code);
        await AssertEchoWorksAsync(raw, 7, "still here");
    }

    [Fact]
    public async Task An_even_stream_id_gets_invalid_argument()
    {
        await using var server = new TestServer(TestServer.EchoRegistry());
        using var raw = await server.ConnectRawAsync();

        await raw.SendRequestAsync(2, Echo("even"));
        var (id, response) = await raw.ReadResponseAsync();

        Assert.Equal(2u, id);
        Assert.Equal((int)StatusCode.InvalidArgument, response.Status.Code);
        await AssertEchoWorksAsync(raw, 3, "odd");
    }

    [Fact]
    public async Task A_reused_or_lower_stream_id_gets_invalid_argument()
    {
        await using var server = new TestServer(TestServer.EchoRegistry());
        using var raw = await server.ConnectRawAsync();
        await AssertEchoWorksAsync(raw, 7, "first");

        foreach (uint stale in new uint[] { 7, 5 })
        {
            await raw.SendRequestAsync(stale, Echo("again"));
            var (id, response) = await raw.ReadResponseAsync();
            Assert.Equal(stale, id);
            Assert.Equal((int)StatusCode.InvalidArgument, response.Status.Code);
        }

        await AssertEchoWorksAsync(raw, 9, "next");
    }

    [Fact]
    public async Task Unknown_frame_types_and_data_frames_are_ignored()
    {
        await using var server = new TestServer(TestServer.EchoRegistry());
        using var raw = await server.ConnectRawAsync();

        await raw.SendFrameAsync(1, 0x7F, [1, 2, 3]);
        await raw.SendFrameAsync(1, (byte)FrameType.Data, [4, 5]);
        await raw.SendFrameAsync(1, (byte)FrameType.Response, []);

        // The next frame read must be the answer to this call: nothing was sent for the others.
        await AssertEchoWorksAsync(raw, 3, "only answer");
    }

    [Fact]
    public async Task An_empty_request_frame_names_the_empty_service_as_unimplemented()
    {
        await using var server = new TestServer(TestServer.EchoRegistry());
        using var raw = await server.ConnectRawAsync();

        await raw.SendFrameAsync(1, RequestType, []);
        var (_, response) = await raw.ReadResponseAsync();

        Assert.Equal((int)StatusCode.Unimplemented, response.Status.Code);
    }

    [Fact]
    public async Task A_success_response_carries_an_explicit_OK_status_like_the_Go_server()
    {
        await using var server = new TestServer(TestServer.EchoRegistry());
        using var raw = await server.ConnectRawAsync();

        await raw.SendRequestAsync(1, RawConnection.Request("Nothing", new Empty()));
        var (_, response) = await raw.ReadResponseAsync();

        Assert.NotNull(response.Status);
        Assert.Equal(0, response.Status.Code);
        Assert.True(response.Payload.IsEmpty);
    }

    [Fact]
    public async Task The_server_answers_deadline_exceeded_when_timeout_nano_passes()
    {
        var registry = new TtrpcServiceRegistry();
        registry.Register(TestServer.Service, "Hang", Empty.Parser, async (Empty _, TtrpcCallContext context) =>
        {
            await Task.Delay(Timeout.Infinite, context.CancellationToken);
            return new Empty();
        });
        await using var server = new TestServer(registry);
        using var raw = await server.ConnectRawAsync();

        await raw.SendRequestAsync(1, RawConnection.Request("Hang", new Empty(), timeoutNano: 50_000_000));
        var (id, response) = await raw.ReadResponseAsync();

        Assert.Equal(1u, id);
        Assert.Equal((int)StatusCode.DeadlineExceeded, response.Status.Code);
    }

    [Fact]
    public async Task A_connection_closed_mid_frame_is_dropped_without_harm()
    {
        await using var server = new TestServer(TestServer.EchoRegistry());
        using (var raw = await server.ConnectRawAsync())
        {
            await raw.SendAsync(RawConnection.Header(100, 1, RequestType));
            await raw.SendAsync(new byte[10]);
        }

        await server.AssertHealthyAsync();
    }
}
