using Shim.Os.Tests.Support;
using Shim.Os.Io;

namespace Shim.Os.Tests;

[CollectionDefinition(nameof(LoopSocketAllocationTests), DisableParallelization = true)]
public sealed class LoopSocketAllocationCollection;

/// <summary>Runs alone: it measures process-wide allocation, which parallel tests would blur.</summary>
[Collection(nameof(LoopSocketAllocationTests))]
public sealed class LoopSocketAllocationTests
{
    [Fact]
    public async Task Waiting_for_readiness_allocates_little_per_round_trip()
    {
        using var dir = TestIo.CreateTempDir();
        using var listener = LoopListener.Bind(IoLoop.Shared, dir.Combine("s"));
        var accept = listener.AcceptAsync(TestIo.Ct).AsTask();
        using var client = await LoopSocket.ConnectAsync(IoLoop.Shared, dir.Combine("s"), TestIo.Ct);
        using var server = await accept;
        var echo = EchoAsync(server, 1 + (3 * 10_000));
        var one = new byte[1];
        var back = new byte[1];

        await RoundTripsAsync(client, one, back, 1);
        // the counter is process-wide: the least of three windows is the one least blurred by
        // whatever else the runtime did meanwhile (timers, pool threads starting)
        long perRoundTrip = long.MaxValue;
        for (int window = 0; window < 3; window++)
        {
            long before = GC.GetTotalAllocatedBytes(precise: true);
            await RoundTripsAsync(client, one, back, 10_000);
            perRoundTrip = Math.Min(perRoundTrip, (GC.GetTotalAllocatedBytes(precise: true) - before) / 10_000);
        }
        await echo.WaitAsync(TestIo.Timeout, TestIo.Ct);

        // Every round trip makes both sides wait for readiness once. Measured ~240 bytes (two waits)
        // where the .NET socket engine gets to 0: a guard against per-wait growth, not a floor.
        Assert.True(perRoundTrip < 400, $"{perRoundTrip} bytes allocated per round trip");
    }

    private static async Task RoundTripsAsync(LoopSocket client, byte[] one, byte[] back, int count)
    {
        for (int i = 0; i < count; i++)
        {
            await client.WriteAsync(one, TestIo.Ct);
            if (await client.ReadAsync(back, TestIo.Ct) != 1)
            {
                throw new EndOfStreamException();   // not Assert.Equal: it allocates per call
            }
        }
    }

    private static async Task EchoAsync(LoopSocket server, int count)
    {
        var buffer = new byte[1];
        for (int i = 0; i < count; i++)
        {
            if (await server.ReadAsync(buffer, TestIo.Ct) != 1)
            {
                throw new EndOfStreamException();
            }
            await server.WriteAsync(buffer, TestIo.Ct);
        }
    }
}
