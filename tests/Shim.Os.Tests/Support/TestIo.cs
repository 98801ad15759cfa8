using System.Security.Cryptography;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Shim.Os.Tests.Support;

/// <summary>Small helpers over raw descriptors for the tests.</summary>
internal static class TestIo
{
    internal static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    internal static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Reads a blocking descriptor to EOF and returns the text.</summary>
    internal static async Task<string> ReadAllTextAsync(SafeFileHandle handle)
    {
        await using var stream = new FileStream(handle, FileAccess.Read, bufferSize: 0);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return await reader.ReadToEndAsync(Ct).WaitAsync(Timeout, Ct);
    }

    /// <summary>One read(2); returns the byte count or -errno.</summary>
    internal static int Read(SafeHandle handle, Span<byte> buffer) => RawIo.Read(handle, buffer);

    /// <summary>write(2) of everything; returns bytes written or -errno.</summary>
    internal static int Write(SafeHandle handle, ReadOnlySpan<byte> data) => RawIo.Write(handle, data);

/// <summary>Writes <paramref name="length"/> random bytes then closes the handle; returns their SHA256.</summary>
    internal static byte[] WriteRandom(SafeFileHandle handle, int length)
    {
        using (handle)
        using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
        {
            var chunk = new byte[256 * 1024];
            for (int left = length; left > 0; left -= chunk.Length)
            {
                var part = chunk.AsSpan(0, Math.Min(left, chunk.Length));
                RandomNumberGenerator.Fill(part);
                hash.AppendData(part);
                int written = TestIo.Write(handle, part);
                if (written < 0)
                {
                    throw new IOException($"write failed: errno {-written}");
                }
            }
            return hash.GetHashAndReset();
        }
    }

    /// <summary>Reads a blocking handle to EOF; returns the SHA256 of everything read.</summary>
    internal static byte[] HashToEnd(SafeFileHandle handle)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[128 * 1024];
        int n;
        while ((n = TestIo.Read(handle, buffer)) > 0)
        {
            hash.AppendData(buffer, 0, n);
        }
        if (n < 0)
        {
            throw new IOException($"read failed: errno {-n}");
        }
        return hash.GetHashAndReset();
    }

    /// <summary>
    /// Waits for a kernel state no descriptor reports (a pipe's unread count, a thread asleep in
    /// write(2) on a frozen filesystem, a handle a thread closes after a held write returns):
    /// checked every few milliseconds up to <see cref="Timeout"/>. Where an event exists, wait on it.
    /// </summary>
    internal static async Task PollUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not seen within {Timeout.TotalSeconds} s: {what}");
            await Task.Delay(5, Ct);
        }
    }

    /// <summary>A fresh directory under /tmp, removed (recursively) on dispose.</summary>
    internal static TempDir CreateTempDir() => new(Directory.CreateTempSubdirectory("shim-os-").FullName);

    internal sealed class TempDir(string path) : IDisposable
    {
        public string Path { get; } = path;

        public string Combine(string name) => System.IO.Path.Combine(Path, name);

        public void Dispose()
        {
            try
            {
                Directory.Delete(Path, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
