using System.Net.Sockets;
using CsCheck;

namespace Shim.Ttrpc.Tests;

public sealed class GarbageTests
{
    /// <summary>Frames with plausible headers (lengths honest or lying) and random payloads.</summary>
    private static readonly Gen<byte[]> Frame =
        Gen.Select(Gen.Byte.Array[0, 64], Gen.UInt[0, 9], Gen.Byte[0, 4], Gen.Byte, Gen.Int[-3, 3],
            (payload, stream, type, flags, lie) =>
            {
                long claimed = Math.Max(0, payload.Length + lie);
                return (byte[])[.. RawConnection.Header((uint)claimed, stream, type, flags), .. payload];
            });

    /// <summary>Headers claiming huge lengths, including over the 4 MiB limit.</summary>
    private static readonly Gen<byte[]> HugeClaim =
        Gen.Select(Gen.UInt, Gen.UInt, Gen.Byte, Gen.Byte.Array[0, 32],
            (length, stream, type, tail) => (byte[])[.. RawConnection.Header(length, stream, type), .. tail]);

    private static readonly Gen<byte[]> Garbage = Gen.OneOf(
        Gen.Byte.Array[0, 200],
        HugeClaim,
        Frame.Array[1, 6].Select(frames => frames.SelectMany(f => f).ToArray()));

    [Fact]
    public async Task Random_garbage_never_takes_the_server_down()
    {
        var logged = new List<string>();
        await using var server = new TestServer(TestServer.EchoRegistry(), new TtrpcServerOptions
        {
            Log = message =>
            {
                lock (logged)
                {
                    logged.Add(message);
                }
            },
        });

        await Garbage.SampleAsync(async bytes =>
        {
            using (var raw = await server.ConnectRawAsync())
            {
                try
                {
                    await raw.SendAsync(bytes);
                    raw.Socket.Shutdown(SocketShutdown.Send);
                }
                catch (SocketException)
                {
                    // The server may already have hung up on this garbage; that is allowed.
                }
            }

            await server.AssertHealthyAsync();
        }, iter: 2000, threads: 1);

        Assert.DoesNotContain(logged, m => m.Contains("unexpectedly", StringComparison.Ordinal));
    }
}
