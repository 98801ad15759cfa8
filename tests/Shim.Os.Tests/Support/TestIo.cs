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
