// Image I/O through ITK. ITK headers stay in this file.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <mutex>
#include <vector>

#include <zlib.h>

#include <itkImage.h>
#include <itkImageFileReader.h>
#include <itkImageFileWriter.h>
#include <itkImageIOBase.h>
#include <itkImageIOFactory.h>
#include <itkMetaImageIOFactory.h>
#include <itkNiftiImageIOFactory.h>
#include <itkNrrdImageIOFactory.h>

#include "isoline/core/atomic_file.h"
#include "isoline/core/error.h"
#include "isoline/core/io.h"
#include "isoline/core/itk_bridge.h"
#include "isoline/core/text.h"

namespace fs = std::filesystem;

namespace isoline::core {

void detail::register_itk_io_factories() {
  static std::once_flag once;
  std::call_once(once, [] {
    itk::NiftiImageIOFactory::RegisterOneFactory();
    itk::NrrdImageIOFactory::RegisterOneFactory();
    itk::MetaImageIOFactory::RegisterOneFactory();
  });
}

std::string detail::itk_description(const itk::ExceptionObject& e) {
  std::string d = e.GetDescription();
  while (!d.empty() && (d.back() == '\n' || d.back() == ' ')) d.pop_back();
  return d;
}

namespace {

// ITK's description line, or "ITK error" when it has none.
std::string itk_reason(const itk::ExceptionObject& e) {
  const std::string d = detail::itk_description(e);
  return d.empty() ? std::string("ITK error") : d;
}

template <class T>
Image read_as(const std::string& path, itk::ImageIOBase* io) {
  auto reader = itk::ImageFileReader<detail::ItkImage<T>>::New();
  reader->SetFileName(path);
  reader->SetImageIO(io);
  reader->Update();
  detail::geometry_from_itk(reader->GetOutput()).validate(path);
  return detail::from_itk<T>(reader->GetOutput());
}

template <class T>
void write_as(const Image& image, const std::string& path) {
  auto writer = itk::ImageFileWriter<detail::ItkImage<T>>::New();
  auto img = detail::to_itk<T>(image);
  writer->SetFileName(path);
  writer->SetInput(img);
  writer->SetUseCompression(true);
  writer->Update();
}

// Reads a NIfTI file through zlib (which also reads uncompressed files) and returns
// {bytes the header promises (vox_offset + voxels * bitpix / 8), bytes actually present}.
// ITK's NIfTI reader silently accepts a truncated file, so read_image checks this first.
// Returns {0, 0} when the header is not NIfTI-1/2 (ITK then reports the problem).
// With `header_only` (an uncompressed file) only the header is read and the bytes present are
// the file's size.
std::pair<std::uint64_t, std::uint64_t> nifti_sizes(const std::string& path, bool* corrupt,
                                                    bool header_only = false) {
  *corrupt = false;
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return {0, 0};
  std::vector<unsigned char> buf(header_only ? 4096 : 1 << 20);
  std::uint64_t total = 0;
  std::vector<unsigned char> header;
  for (bool first = true; !(header_only && !first); first = false) {
    int n = gzread(f, buf.data(), static_cast<unsigned>(buf.size()));
    if (n < 0) {
      *corrupt = true;
      break;
    }
    if (n == 0) break;
    if (header.size() < 540) header.insert(header.end(), buf.begin(), buf.begin() + std::min(n, 540));
    total += static_cast<std::uint64_t>(n);
  }
  int err = Z_OK;
  gzerror(f, &err);
  if (err != Z_OK && err != Z_STREAM_END) *corrupt = true;
  gzclose(f);
  if (header_only) {
    std::error_code ec;
    total = fs::file_size(path, ec);
    if (ec) total = 0;
  }
  if (header.size() < 348) return {0, total};

  auto rd = [&](std::size_t off, std::size_t len, bool swap) {
    std::uint64_t v = 0;
    for (std::size_t b = 0; b < len; ++b) {
      const std::size_t idx = swap ? off + b : off + len - 1 - b;  // value is little endian unless swapped
      v = (v << 8) | header[idx];
    }
    return v;
  };
  auto as_i32 = [](std::uint64_t v) { return static_cast<std::int32_t>(static_cast<std::uint32_t>(v)); };
  const std::int32_t sizeof_le = as_i32(rd(0, 4, false));
  const std::int32_t sizeof_be = as_i32(rd(0, 4, true));
  std::uint64_t need = 0;
  if (sizeof_le == 348 || sizeof_be == 348) {
    const bool sw = sizeof_le != 348;
    const int ndim = static_cast<std::int16_t>(rd(40, 2, sw));
    if (ndim < 1 || ndim > 7) return {0, total};
    std::uint64_t nvox = 1;
    for (int d = 1; d <= ndim; ++d) nvox *= std::max<std::int64_t>(1, static_cast<std::int16_t>(rd(40 + 2 * d, 2, sw)));
    const int bitpix = static_cast<std::int16_t>(rd(72, 2, sw));
    std::uint32_t vraw = static_cast<std::uint32_t>(rd(108, 4, sw));
    float vox_offset;
    std::memcpy(&vox_offset, &vraw, 4);
    need = static_cast<std::uint64_t>(std::max(352.f, vox_offset)) + nvox * static_cast<std::uint64_t>(bitpix) / 8;
  } else if ((sizeof_le == 540 || sizeof_be == 540) && header.size() >= 540) {
    const bool sw = sizeof_le != 540;
    const auto ndim = static_cast<std::int64_t>(rd(16, 8, sw));
    if (ndim < 1 || ndim > 7) return {0, total};
    std::uint64_t nvox = 1;
    for (int d = 1; d <= ndim; ++d) nvox *= std::max<std::int64_t>(1, static_cast<std::int64_t>(rd(16 + 8 * d, 8, sw)));
    const int bitpix = static_cast<std::int16_t>(rd(14, 2, sw));
    need = std::max<std::uint64_t>(544, rd(168, 8, sw)) + nvox * static_cast<std::uint64_t>(bitpix) / 8;
  }
  return {need, total};
}

}  // namespace

ImageFormat image_format_from_path(const std::string& path) {
  if (ends_with_nocase(path, ".nii") || ends_with_nocase(path, ".nii.gz")) return ImageFormat::Nifti;
  if (ends_with_nocase(path, ".nrrd") || ends_with_nocase(path, ".nhdr")) return ImageFormat::Nrrd;
  if (ends_with_nocase(path, ".mha") || ends_with_nocase(path, ".mhd")) return ImageFormat::MetaImage;
  return ImageFormat::Unknown;
}

bool is_image_path(const std::string& path) {
  return image_format_from_path(path) != ImageFormat::Unknown;
}

Image read_image(const std::string& path, std::optional<PixelType> as) {
  const char* op = "read image";
  std::error_code ec;
  if (!fs::exists(path, ec)) fail<IoError>(op, path, "file does not exist");
  if (fs::is_directory(path, ec)) fail<IoError>(op, path, "is a directory, not an image file");
  // A 0-byte file (an interrupted copy or download) is not a format problem: say so.
  if (fs::is_regular_file(path, ec) && fs::file_size(path, ec) == 0 && !ec) fail<IoError>(op, path, "file is empty (0 bytes)");
  detail::register_itk_io_factories();

  itk::ImageIOBase::Pointer io =
      itk::ImageIOFactory::CreateImageIO(path.c_str(), itk::ImageIOFactory::IOFileModeEnum::ReadMode);
  if (!io)
    fail<IoError>(op, path, "not a readable image (supported: NIfTI .nii/.nii.gz, NRRD, MetaImage .mha/.mhd)");
  try {
    io->SetFileName(path);
    io->ReadImageInformation();
  } catch (const itk::ExceptionObject& e) {
    fail<IoError>(op, path, "cannot read image header: " + itk_reason(e));
  }
  const unsigned dims = io->GetNumberOfDimensions();
  unsigned effective = dims;
  while (effective > 3 && io->GetDimensions(effective - 1) == 1) --effective;
  if (effective != 3)
    fail<NotSupported>(op, path,
                       "expected a 3-D image, got " + std::to_string(effective) + " dimensions");
  if (io->GetNumberOfComponents() != 1)
    fail<NotSupported>(op, path,
                       "expected one value per voxel, got " +
                           std::to_string(io->GetNumberOfComponents()) + " components");

  // ITK's NIfTI reader does not notice a truncated file (plain or gzip): check it here.
  if (ends_with_nocase(path, ".nii") || ends_with_nocase(path, ".nii.gz")) {
    bool corrupt = false;
    auto [need, have] = nifti_sizes(path, &corrupt);
    if (corrupt) fail<IoError>(op, path, "compressed data are truncated or corrupt");
    if (have < need)
      fail<IoError>(op, path,
                    "file is truncated (" + std::to_string(have) + " bytes of data, header needs " +
                        std::to_string(need) + ")");
  }

  PixelType type = PixelType::Float32;
  if (as) {
    type = *as;
  } else {
    using C = itk::IOComponentEnum;
    switch (io->GetComponentType()) {
      case C::UCHAR: type = PixelType::UInt8; break;
      case C::CHAR:
      case C::SHORT: type = PixelType::Int16; break;
      default: type = PixelType::Float32; break;
    }
  }
  try {
    switch (type) {
      case PixelType::UInt8: return read_as<std::uint8_t>(path, io);
      case PixelType::Int16: return read_as<std::int16_t>(path, io);
      case PixelType::Float32: return read_as<float>(path, io);
    }
  } catch (const itk::ExceptionObject& e) {
    fail<IoError>(op, path, "cannot read pixel data: " + itk_reason(e));
  }
  fail<IoError>(op, path, "unsupported pixel type");
}

namespace {
// {bytes a MetaImage file with ElementDataFile = LOCAL must hold (its header + CompressedDataSize,
// or + `data_bytes` uncompressed), bytes it holds}; {0, 0} for any other file or header.
std::pair<std::uint64_t, std::uint64_t> metaimage_local_sizes(const std::string& path,
                                                              std::size_t data_bytes) {
  if (!ends_with_nocase(path, ".mha")) return {0, 0};
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return {0, 0};
  std::string header;
  std::uint64_t compressed = 0;
  bool local = false, is_compressed = false;
  char line[4096];
  while (std::fgets(line, sizeof line, f)) {
    header += line;
    const std::string l(line);
    if (l.rfind("CompressedData ", 0) == 0 || l.rfind("CompressedData=", 0) == 0)
      is_compressed = l.find("True") != std::string::npos;
    if (l.rfind("CompressedDataSize", 0) == 0) {
      const auto eq = l.find('=');
      if (eq != std::string::npos) compressed = std::strtoull(l.c_str() + eq + 1, nullptr, 10);
    }
    if (l.rfind("ElementDataFile", 0) == 0) {  // the last header line
      local = l.find("LOCAL") != std::string::npos;
      break;
    }
  }
  std::fclose(f);
  if (!local || (is_compressed && compressed == 0)) return {0, 0};
  std::error_code ec;
  const std::uint64_t size = fs::file_size(path, ec);
  if (ec) return {0, 0};
  return {header.size() + (compressed ? compressed : data_bytes), size};
}
}  // namespace

void detail::check_itk_written(const std::string& written, const std::string& target,
                               std::string_view op, const void* data, std::size_t bytes) {
  std::string why;
  if (ends_with_nocase(written, ".nii") || ends_with_nocase(written, ".nii.gz")) {
    bool corrupt = false;
    const auto [need, have] =
        nifti_sizes(written, &corrupt, /*header_only=*/ends_with_nocase(written, ".nii"));
    if (corrupt || need == 0 || have < need)
      why = need == 0 ? "only " + std::to_string(have) + " bytes were written, not even the header"
                      : "only " + std::to_string(have) + " of " + std::to_string(need) +
                            " bytes were written";
  } else if (const auto [need, have] = metaimage_local_sizes(written, bytes); have < need) {
    // A MetaImage with its data in the file (.mha): the header says how many bytes follow it. ITK
    // reads a short compressed block without noticing (the missing bytes are whatever its buffer
    // held), so the read-back below cannot be relied on to see the truncation.
    why = "only " + std::to_string(have) + " of " + std::to_string(need) + " bytes were written";
  } else {
    // NRRD, MetaImage: read back, compare.
    try {
      itk::ImageIOBase::Pointer io = itk::ImageIOFactory::CreateImageIO(
          written.c_str(), itk::ImageIOFactory::IOFileModeEnum::ReadMode);
      if (!io) {
        why = "the file written is not readable";
      } else {
        io->SetFileName(written);
        io->ReadImageInformation();
        const unsigned nd = io->GetNumberOfDimensions();
        itk::ImageIORegion region(nd);
        for (unsigned d = 0; d < nd; ++d) {
          region.SetIndex(d, 0);
          region.SetSize(d, io->GetDimensions(d));
        }
        io->SetIORegion(region);
        if (static_cast<std::size_t>(io->GetImageSizeInBytes()) != bytes) {
          why = "the file written holds " + std::to_string(io->GetImageSizeInBytes()) +
                " bytes of data, not " + std::to_string(bytes);
        } else {
          std::vector<char> back(bytes);
          io->Read(back.data());
          if (bytes && std::memcmp(back.data(), data, bytes) != 0)
            why = "the file written reads back different";
        }
      }
    } catch (const itk::ExceptionObject& e) {
      why = "the file written cannot be read back: " + itk_reason(e);
    }
  }
  if (why.empty()) return;
  // The writer reported nothing (or only on stderr): find the system's reason by writing again.
  // (A read-back failure's own text says nothing more: only the byte count is kept beside it.)
  const std::string reason = write_failure_reason(written);
  const bool counted = why.rfind("only ", 0) == 0;
  fail<IoError>(op, target,
                "cannot write: " + (reason.empty() ? why
                                    : counted      ? reason + " (" + why + ")"
                                                   : reason));
}

namespace {
// Compresses `src` into the gzip file `dst` at zlib's fastest level.
void gzip_file(const std::string& src, const std::string& dst, const char* op, const std::string& path) {
  std::FILE* in = std::fopen(src.c_str(), "rb");
  if (!in) fail<IoError>(op, path, "cannot reopen the uncompressed temporary " + src);
  gzFile g = gzopen(dst.c_str(), "wb1");
  if (!g) {
    const int err = errno;
    std::fclose(in);
    fail<IoError>(op, path, std::string("cannot create the file: ") + std::strerror(err));
  }
  std::vector<char> buf(std::size_t(4) << 20);
  std::string why;
  for (;;) {
    const std::size_t n = std::fread(buf.data(), 1, buf.size(), in);
    if (n > 0 && gzwrite(g, buf.data(), static_cast<unsigned>(n)) != static_cast<int>(n)) {
      int zerr = Z_OK;
      const char* m = gzerror(g, &zerr);  // Z_ERRNO: the system's message
      why = m && *m ? m : "compression failed";
      break;
    }
    if (n < buf.size()) {
      if (std::ferror(in)) why = "cannot read back the uncompressed data";
      break;
    }
  }
  std::fclose(in);
  errno = 0;
  const int closed = gzclose(g);  // writes the last buffer
  if (why.empty() && closed != Z_OK)
    why = closed == Z_ERRNO && errno
              ? std::strerror(errno)
              : "compression failed (zlib error " + std::to_string(closed) + ")";
  if (!why.empty()) fail<IoError>(op, path, "cannot write: " + why);
}
}  // namespace

void write_image(const Image& image, const std::string& path) {
  const char* op = "write image";
  if (image.empty()) fail<InvalidInput>(op, path, "image is empty");
  if (!is_image_path(path))
    fail<InvalidInput>(op, path, "unknown image format (use .nii.gz, .nii, .nrrd or .mha)");
  detail::register_itk_io_factories();
  AtomicOutput out(path);
  // .nii.gz: ITK writes the NIfTI uncompressed beside the temporary, zlib compresses it at its
  // fastest level. ITK 5.2's NIfTI writer always uses zlib's default level, about 4 times slower
  // (a 512 x 512 x 160 CT took 5 s alone, 17 s on a loaded machine: one step a Ctrl-C cannot cut
  // short); the files are a little larger.
  const bool gz = ends_with_nocase(path, ".nii.gz");
  const std::string itk_path = gz ? out.temp_path().substr(0, out.temp_path().size() - 3) : out.temp_path();
  struct RemoveRaw {
    std::string p;
    ~RemoveRaw() {
      std::error_code ec;
      if (!p.empty()) fs::remove(p, ec);
    }
  } raw{gz ? itk_path : std::string()};
  try {
    switch (image.pixel_type()) {
      case PixelType::UInt8: write_as<std::uint8_t>(image, itk_path); break;
      case PixelType::Int16: write_as<std::int16_t>(image, itk_path); break;
      case PixelType::Float32: write_as<float>(image, itk_path); break;
    }
  } catch (const itk::ExceptionObject& e) {
    fail<IoError>(op, path, write_failure_problem(itk_path, itk_reason(e)));
  }
  // ITK's writers report a failed write on stderr only, or not at all (a short file).
  detail::check_itk_written(itk_path, path, op, image.raw(), image.byte_size());
  if (gz) gzip_file(itk_path, out.temp_path(), op, path);
  out.commit();
}

const std::vector<std::string>& not_mask_names() {
  static const std::vector<std::string> names = {"ct", "dose", "labels", "possible_dose_mask", "image", "ct_hu"};
  return names;
}

bool is_not_mask_name(const std::string& stem) {
  const auto& skip = not_mask_names();
  return std::find(skip.begin(), skip.end(), to_lower(stem)) != skip.end();
}

Image read_mask(const std::string& path, std::string_view operation) {
  Image m = read_image(path);
  const auto [lo, hi] = m.min_max();
  bool whole = true;  // every value a whole number (always so for the integer types)
  if (m.pixel_type() == PixelType::Float32) {
    const float* p = m.data<float>();
    for (std::size_t v = 0; v < m.num_voxels() && whole; ++v) whole = std::isfinite(p[v]) && std::floor(p[v]) == p[v];
  }
  if (whole && lo >= 0 && hi <= 1) return m.pixel_type() == PixelType::UInt8 ? m : m.cast(PixelType::UInt8);
  if (m.pixel_type() != PixelType::Float32 && lo == 0 && hi > 1) {
    // An integer mask stored as 0 / 255 (or 0 / any one value) is still a mask.
    bool two_values = true;
    for (std::size_t v = 0; v < m.num_voxels() && two_values; ++v) two_values = m.value(v) == 0 || m.value(v) == hi;
    if (two_values) {
      Image out(m.geometry(), PixelType::UInt8);
      std::uint8_t* o = out.data<std::uint8_t>();
      for (std::size_t v = 0; v < m.num_voxels(); ++v) o[v] = m.value(v) != 0;
      return out;
    }
  }
  // Say what the image looks like: a mask read as 0/1 here would give silently wrong results.
  const char* type = m.pixel_type() == PixelType::Float32 ? "float" : "integer";
  const char* hint = !whole && lo >= 0 && hi <= 1 ? "a probability map? threshold it first"
                     : !whole                     ? "a dose, CT or other image?"
                     : lo < 0                     ? "a CT or other image?"
                                                  : "a label map? write one 0/1 mask per structure";
  char what[200];
  std::snprintf(what, sizeof what, "not a structure mask (%s values %g to %g%s; a mask holds 0 and 1, or 0 and 255): %s", type, lo,
                hi, whole ? "" : ", fractional", hint);
  fail<InvalidInput>(operation, path, what);
}

namespace {

// name, path of every mask file in `dir` (sorted by name), as read_mask_dir lists a folder.
std::vector<std::pair<std::string, std::string>> list_masks(const std::string& dir, const char* op) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail<IoError>(op, dir, "not a directory");
  std::vector<std::pair<std::string, std::string>> found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string p = entry.path().string();
    if (!entry.is_regular_file() || !is_image_path(p)) continue;
    std::string stem = entry.path().filename().string();
    for (const char* ext : {".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd"})
      if (ends_with_nocase(stem, ext)) {
        stem = stem.substr(0, stem.size() - std::strlen(ext));
        break;
      }
    // A case folder (OpenKBP, `isoline phantom`) also holds the CT, the dose and a label map.
    if (is_not_mask_name(stem)) continue;
    found.emplace_back(stem, p);
  }
  std::sort(found.begin(), found.end());
  return found;
}

}  // namespace

std::vector<std::string> mask_names(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& [name, path] : list_masks(dir, "read masks")) names.push_back(name);
  return names;
}

StructureSet read_mask_dir(const std::string& dir, const std::vector<std::string>& names) {
  const char* op = "read masks";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail<IoError>(op, dir, "not a directory");
  std::vector<std::pair<std::string, std::string>> found;  // name, path
  if (names.empty()) {
    found = list_masks(dir, op);
  } else {
    for (const auto& n : names)
      for (const char* ext : {".nii.gz", ".nii", ".nrrd", ".mha"}) {
        const std::string p = (fs::path(dir) / (n + ext)).string();
        if (fs::exists(p, ec)) {
          found.emplace_back(n, p);
          break;
        }
      }
  }
  StructureSet set;
  for (const auto& [name, path] : found) set.add(name, read_mask(path, op));
  return set;
}

void write_mask_dir(const StructureSet& set, const std::string& dir, const std::string& extension) {
  ensure_directory(dir, "write masks");
  for (const auto& s : set) {
    // A structure name is a file name inside `dir`, never a path out of it ("../x", "a/b").
    std::string file = s.name;
    for (char& c : file)
      if (c == '/' || c == '\\') c = '_';
    if (file.empty() || file[0] == '.') file = "_" + file;
    write_image(s.mask, (fs::path(dir) / (file + extension)).string());
  }
}

}  // namespace isoline::core
