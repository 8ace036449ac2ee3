// JPEG 2000 (and any other syntax DCMTK cannot decode) through ITK's GDCM image IO.
#include <string>
#include <vector>

#include <itkGDCMImageIO.h>
#include <itkImage.h>
#include <itkImageFileReader.h>

#include "isoline/core/error.h"

namespace isoline::rtstruct::detail {

/// Decodes one single-frame slice; returns rows*cols modality values (rescale applied).
std::vector<float> decode_with_gdcm(const std::string& file, int rows, int cols) {
  using ImageType = itk::Image<float, 2>;
  auto io = itk::GDCMImageIO::New();
  auto reader = itk::ImageFileReader<ImageType>::New();
  reader->SetImageIO(io);
  reader->SetFileName(file);
  try {
    reader->Update();
  } catch (const itk::ExceptionObject& e) {
    core::fail<core::IoError>(
        "read CT series", file,
        std::string("cannot decode compressed pixel data through GDCM: ") + e.GetDescription());
  }
  ImageType::Pointer img = reader->GetOutput();
  const auto size = img->GetLargestPossibleRegion().GetSize();
  if (static_cast<int>(size[0]) != cols || static_cast<int>(size[1]) != rows)
    core::fail<core::IoError>("read CT series", file, "decoded pixel data has the wrong size");
  const float* p = img->GetBufferPointer();
  return std::vector<float>(p, p + static_cast<std::size_t>(rows) * cols);
}

}  // namespace isoline::rtstruct::detail
