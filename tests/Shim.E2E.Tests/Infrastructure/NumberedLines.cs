using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Shim.E2E.Tests;

/// <summary>
/// The output of busybox <c>yes abcdefghij | cat -n</c> (numbered lines, so a lost, repeated or
/// reordered chunk changes the bytes), generated locally to compare what arrives against it,
/// and helpers that read a stream into a hash without holding it in memory.
/// </summary>
internal static class NumberedLines
{
    /// <summary>The shell command, in the container, that writes the first <paramref name="bytes"/> bytes (all when null).</summary>
    public static string Command(long? bytes) =>
        bytes is { } n ? $"yes abcdefghij | cat -n | head -c {n.ToString(CultureInfo.InvariantCulture)}" : "yes abcdefghij | cat -n";

    /// <summary>SHA-256 (hex) of the first <paramref name="bytes"/> bytes of the stream.</summary>
    public static string ExpectedSha256(long bytes)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var chunk = new MemoryStream(1 << 20);
        long left = bytes;
        for (long line = 1; left > 0; line++)
        {
            // busybox cat -n: the number right-aligned in 6 columns, a tab, the line
            chunk.Write(Encoding.ASCII.GetBytes(line.ToString(CultureInfo.InvariantCulture).PadLeft(6) + "\tabcdefghij\n"));
            if (chunk.Length >= (1 << 20) || chunk.Length >= left)
            {
                int take = (int)Math.Min(chunk.Length, left);
                hash.AppendData(chunk.GetBuffer(), 0, take);
                left -= take;
                chunk.SetLength(0);
            }
        }
        return Convert.ToHexString(hash.GetHashAndReset());
    }

    /// <summary>The first <paramref name="bytes"/> bytes of the stream.</summary>
    public static byte[] Prefix(int bytes)
    {
        var all = new MemoryStream();
        for (long line = 1; all.Length < bytes; line++)
        {
            all.Write(Encoding.ASCII.GetBytes(line.ToString(CultureInfo.InvariantCulture).PadLeft(6) + "\tabcdefghij\n"));
        }
        return all.ToArray()[..bytes];
    }

    /// <summary>Reads into <paramref name="hash"/> until EOF or until <paramref name="limit"/> bytes were read; returns how many.</summary>
    public static async Task<long> ReadIntoAsync(Stream from, IncrementalHash hash, long limit, CancellationToken ct)
    {
        var buffer = new byte[64 * 1024];
        long total = 0;
        while (total < limit)
        {
            int n = await from.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, limit - total)), ct);
            if (n == 0) { break; }
            hash.AppendData(buffer, 0, n);
            total += n;
        }
        return total;
    }
}
