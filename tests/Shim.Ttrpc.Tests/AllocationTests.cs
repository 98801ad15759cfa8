using Google.Protobuf.WellKnownTypes;

namespace Shim.Ttrpc.Tests;

[CollectionDefinition(nameof(AllocationTests), DisableParallelization = true)]
public sealed class AllocationCollection;

/// <summary>Runs alone: it measures process-wide allocation, which parallel tests would blur.</summary>
[Collection(nameof(AllocationTests))]
public sealed class AllocationTests
{
    [Fact]
    public async Task Reading_frames_does_not_allocate_per_frame()
    {
        const int frames = 50_000;
        await using var server = new TestServer(TestServer.EchoRegistry());
        using var raw = await server.ConnectRawAsync();

        // Ignored frames exercise the header read and payload skip without any protobuf work.
        var frame = (byte[])[.. RawConnection.Header(32, 1, 0x7F), .. new byte[32]];
        var batch = Enumerable.Repeat(frame, 100).SelectMany(f => f).ToArray();
        await raw.SendAsync(batch);
        await WarmUpAsync(raw, 1);

        long before = GC.GetTotalAllocatedBytes(precise: true);
        for (int i = 0; i < frames / 100; i++)
        {
            await raw.SendAsync(batch);
        }

        await WarmUpAsync(raw, 3);
        long perFrame = (GC.GetTotalAllocatedBytes(precise: true) - before) / frames;

        // The test's own sends and the one echo call allocate a little; per-frame allocation would show as hundreds of bytes.
        Assert.True(perFrame < 8, $"{perFrame} bytes allocated per frame");
    }

    [Fact]
    public async Task A_header_promising_4_MiB_and_stalling_costs_the_server_nothing_like_4_MiB()
    {
        await using var server = new TestServer(TestServer.EchoRegistry(), new TtrpcServerOptions { FrameTimeout = TimeSpan.FromMilliseconds(300) });
        using var raw = await server.ConnectRawAsync();
        await WarmUpAsync(raw, 1);

        long before = GC.GetTotalAllocatedBytes(precise: true);
        await raw.SendAsync([.. RawConnection.Header(FrameCodec.MaxPayload, 3, (byte)FrameType.Request), .. new byte[1000]]);
        // dropped once the frame timeout passed: by then the server had read the header and waited for the payload
        Assert.True(await raw.PeerClosedAsync(), "the stalled peer was kept");
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        // the payload buffer grows with what arrived (64 KiB first), instead of taking the promised 4 MiB at once
        Assert.True(allocated < 1 << 20, $"{allocated} bytes allocated for a stalled 4 MiB header");
    }

    /// <summary>A round trip after the batch proves the server has read every earlier frame.</summary>
    private static async Task WarmUpAsync(RawConnection raw, uint streamId)
    {
        await raw.SendRequestAsync(streamId, RawConnection.Request("Echo", new StringValue { Value = "sync" }));
        var (id, _) = await raw.ReadResponseAsync();
        Assert.Equal(streamId, id);
    }
}
