using System.Runtime.InteropServices;
using System.Text;

namespace Shim.Os.Interop;

/// <summary>Null-terminated UTF-8 strings and string arrays in one native block, freed on dispose.</summary>
internal unsafe struct NativeStrings : IDisposable
{
    private byte* _block;

    /// <summary>Copies <paramref name="value"/> as a null-terminated UTF-8 string.</summary>
    internal static byte* Single(string value, out NativeStrings owner)
    {
        int length = Encoding.UTF8.GetByteCount(value);
        byte* block = (byte*)NativeMemory.Alloc((nuint)length + 1);
        int written = Encoding.UTF8.GetBytes(value, new Span<byte>(block, length));
        block[written] = 0;
        owner = new NativeStrings { _block = block };
        return block;
    }

    /// <summary>Builds a char*[] terminated by NULL, every string null-terminated UTF-8.</summary>
    internal static byte** Array(IReadOnlyList<string> values, out NativeStrings owner)
    {
        int pointerBytes = (values.Count + 1) * sizeof(nint);
        int total = pointerBytes;
        for (int i = 0; i < values.Count; i++)
        {
            total += Encoding.UTF8.GetByteCount(values[i]) + 1;
        }
        byte* block = (byte*)NativeMemory.Alloc((nuint)total);
        byte** pointers = (byte**)block;
        byte* cursor = block + pointerBytes;
        byte* end = block + total;
        for (int i = 0; i < values.Count; i++)
        {
            pointers[i] = cursor;
            int written = Encoding.UTF8.GetBytes(values[i], new Span<byte>(cursor, (int)(end - cursor)));
            cursor[written] = 0;
            cursor += written + 1;
        }
        pointers[values.Count] = null;
        owner = new NativeStrings { _block = block };
        return pointers;
    }

    /// <summary>Reads a null-terminated UTF-8 string.</summary>
    internal static string Read(byte* value) => Marshal.PtrToStringUTF8((nint)value) ?? string.Empty;

    public void Dispose()
    {
        if (_block != null)
        {
            NativeMemory.Free(_block);
            _block = null;
        }
    }
}
