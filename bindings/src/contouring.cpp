// isoline.contouring bindings: auto-contouring, Body mask, model cards, agreement metrics.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>

#include "common.h"

#include "isoline/contouring/contour.h"
#include "isoline/contouring/metrics.h"
#include "isoline/contouring/model.h"
#include "isoline/core/device.h"
#include "isoline/core/error.h"
#include "isoline/pipeline/case_io.h"

namespace py = pybind11;
using namespace isoline;
using namespace isoline::contouring;

namespace isoline::py_bind {

void bind_contouring(py::module_ m) {
  py::class_<ExpectedRange>(m, "ExpectedRange",
                            "A structure's usual volume range in the training data (model card), for "
                            "the quality flags; known is False when the card has none.")
      .def_readonly("volume_cc_min", &ExpectedRange::volume_cc_min)
      .def_readonly("volume_cc_max", &ExpectedRange::volume_cc_max)
      .def_readonly("known", &ExpectedRange::known);

  py::class_<ModelCard>(m, "ModelCard",
                        "What a contouring network needs: structures, grid, intensity window.")
      .def_readonly("card_path", &ModelCard::card_path)
      .def_readonly("model_path", &ModelCard::model_path)
      .def_readonly("name", &ModelCard::name)
      .def_readonly("version", &ModelCard::version)
      .def_readonly("structures", &ModelCard::structures)
      .def_readonly("spacing", &ModelCard::spacing)
      .def_readonly("context", &ModelCard::context)
      .def_readonly("volume", &ModelCard::volume, "True for a 3-D network (card input.kind \"volume\")")
      .def_readonly("window_slices", &ModelCard::window_slices)
      .def_readonly("threshold", &ModelCard::threshold)
      .def_readonly("expected", &ModelCard::expected)
      .def_readonly("scope", &ModelCard::scope)
      .def("__repr__", [](const ModelCard& c) {
        return "ModelCard('" + c.name + "', version '" + c.version + "', " +
               std::to_string(c.structures.size()) + " structures)";
      });
  m.def("load_model_card", &load_model_card, py::arg("path"),
        "Reads a model card (JSON); IoError when unreadable, InvalidInput for missing fields.");
  m.def("default_model_card_path", &default_model_card_path,
        "$ISOLINE_MODEL when set, else the card shipped in contouring/models/.");

  py::class_<StructureQuality>(m, "StructureQuality",
                               "What the reviewer should know about one contour: mean network "
                               "confidence inside it (0..1), volume, flags (empty = nothing unusual).")
      .def_readonly("name", &StructureQuality::name)
      .def_readonly("confidence", &StructureQuality::confidence)
      .def_readonly("volume_cc", &StructureQuality::volume_cc)
      .def_readonly("kept_fraction", &StructureQuality::kept_fraction,
                    "Of the network's voxels above the cut, the share in the part(s) kept; low = "
                    "the prediction was in pieces.")
      .def_readonly("pieces", &StructureQuality::pieces,
                    "Connected pieces kept, for the serial organs SpinalCord and Esophagus (all "
                    "pieces of at least a tenth of the largest are kept; more than 1 is flagged); "
                    "0 for other structures.")
      .def_readonly("flags", &StructureQuality::flags)
      .def("summary", &StructureQuality::summary,
           "One line for reports and the RT-STRUCT ROI description: confidence, volume and the flags.")
      .def("__repr__", [](const StructureQuality& q) {
        return "StructureQuality('" + q.name + "': " + q.summary() + ")";
      });

  py::class_<ContourResult>(m, "ContourResult",
                            "Result of contour(): structures on the CT grid, a StructureQuality each, "
                            "whole-image warnings, the model's name and version.")
      .def_readonly("structures", &ContourResult::structures, "StructureSet on the CT grid")
      .def_readonly("quality", &ContourResult::quality)
      .def_readonly("warnings", &ContourResult::warnings)
      .def_readonly("in_scope", &ContourResult::in_scope)
      .def_readonly("model_name", &ContourResult::model_name)
      .def_readonly("model_version", &ContourResult::model_version)
      .def("__repr__", [](const ContourResult& r) {
        return "ContourResult(" + std::to_string(r.structures.size()) + " structures, model '" +
               r.model_name + "')";
      });

  py::class_<Model>(
      m, "Model",
      "A contouring model loaded once (card + TorchScript network on a device) and reused for "
      "many CTs; copies share the network.")
      .def(py::init([](const std::string& model_card, const std::string& device) {
             const core::Device d = core::parse_device(device);
             py::gil_scoped_release nogil;
             return Model(model_card, d);
           }),
           py::arg("model_card") = "", py::arg("device") = "cpu",
           "Loads the model card (empty = default_model_card_path()) and its network.")
      .def_property_readonly("card", &Model::card)
      .def_property_readonly("device", [](const Model& mo) { return core::to_string(mo.device()); })
      .def("__repr__", [](const Model& mo) {
        return "Model('" + mo.card().name + "' " + mo.card().version +
               ", device=" + std::string(core::to_string(mo.device())) + ")";
      });

  m.def(
      "contour",
      [](const core::Image& ct, const std::vector<std::string>& structures,
         const std::string& device, const std::string& model_card, int batch,
         std::optional<Model> model, py::object progress) {
        ContourOptions o;
        o.structures = structures;
        o.device = core::parse_device(device);
        o.model_card = model_card;
        o.batch = batch;
        core::Progress prog(wrap_progress(progress), "contour");
        py::gil_scoped_release nogil;
        return model ? contour(ct, *model, o, prog) : contour(ct, o, prog);
      },
      py::arg("ct"), py::kw_only(), py::arg("structures") = std::vector<std::string>{},
      py::arg("device") = "cpu", py::arg("model_card") = "", py::arg("batch") = 16,
      py::arg("model") = py::none(), py::arg("progress") = py::none(),
      "Contours the head-and-neck organs at risk and targets of a CT (HU, any orientation). "
      "structures: names from the model card plus 'Body' (empty = all). model: a loaded Model "
      "(then model_card and device are not used); without it the model is loaded for this call. "
      "Releases the GIL.");
  m.def("_write_review", &pipeline::write_contour_review, py::arg("ct"), py::arg("result"),
        py::arg("html"), py::arg("png"), py::arg("title"), py::arg("info"),
        py::call_guard<py::gil_scoped_release>());
  m.def("body_mask", &body_mask, py::arg("ct"), py::arg("threshold_hu") = -350.0,
        py::arg("opening_mm") = 4.0, py::call_guard<py::gil_scoped_release>(),
        "Body/External mask by threshold and morphology, on the CT grid.");

  py::class_<MaskAgreement>(m, "MaskAgreement",
                            "Agreement of a predicted and a reference mask: Dice, HD95 (mm), surface "
                            "Dice, both volumes (cc).")
      .def_readonly("dice", &MaskAgreement::dice)
      .def_readonly("hd95_mm", &MaskAgreement::hd95_mm)
      .def_readonly("surface_dice", &MaskAgreement::surface_dice)
      .def_readonly("ref_cc", &MaskAgreement::ref_cc)
      .def_readonly("pred_cc", &MaskAgreement::pred_cc)
      .def("__repr__", [](const MaskAgreement& a) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "MaskAgreement(dice=%.3f, hd95_mm=%.2f, surface_dice=%.3f)",
                      a.dice, a.hd95_mm, a.surface_dice);
        return std::string(buf);
      });
  m.def("compare_masks", &compare_masks, py::arg("pred"), py::arg("ref"),
        py::arg("tolerance_mm") = 4.0, py::call_guard<py::gil_scoped_release>(),
        "Dice, HD95 and surface Dice of two masks on one grid.");

  py::class_<EvalRow>(m, "EvalRow", "One case and structure of evaluate_dirs: its MaskAgreement and reference flag.")
      .def_readonly("case_id", &EvalRow::case_id)
      .def_readonly("structure", &EvalRow::structure)
      .def_readonly("agreement", &EvalRow::m)
      .def_readonly("ref_flag", &EvalRow::ref_flag,
                    "why the reference looks implausible (flag_references); '' when it does not");
  py::class_<EvalSummary>(m, "EvalSummary",
                          "Per structure over the cases (summarize): Dice, HD95 and surface Dice "
                          "means/medians, flagged references.")
      .def_readonly("structure", &EvalSummary::structure)
      .def_readonly("cases", &EvalSummary::cases)
      .def_readonly("dice_mean", &EvalSummary::dice_mean)
      .def_readonly("dice_median", &EvalSummary::dice_median)
      .def_readonly("hd95_mean", &EvalSummary::hd95_mean)
      .def_readonly("hd95_median", &EvalSummary::hd95_median)
      .def_readonly("hd95_undefined", &EvalSummary::hd95_undefined)
      .def_readonly("sdice_mean", &EvalSummary::sdice_mean)
      .def_readonly("flagged", &EvalSummary::flagged)
      .def_readonly("dice_mean_plausible", &EvalSummary::dice_mean_plausible);
  m.def(
      "evaluate_dirs",
      [](const std::string& pred, const std::string& ref,
         const std::vector<std::string>& structures, double tol, py::object progress) {
        core::Progress prog(wrap_progress(progress), "evaluate");
        py::gil_scoped_release nogil;
        return evaluate_dirs(pred, ref, structures, tol, prog);
      },
      py::arg("pred_dir"), py::arg("ref_dir"), py::arg("structures") = std::vector<std::string>{},
      py::arg("tolerance_mm") = 4.0, py::arg("progress") = py::none(),
      "Evaluates predicted mask directories against reference ones (one case each, or directories "
      "of cases matched by name): an EvalRow per case and reference structure. evaluate_contours "
      "also returns the warnings.");
  py::class_<EvalResult>(m, "EvalResult",
                         "evaluate_contours' result: the rows (EvalRow) and the warnings a caller must see.")
      .def_readonly("rows", &EvalResult::rows)
      .def_readonly("warnings", &EvalResult::warnings,
                    "one line each: case folders not scored, predictions resampled from another grid, "
                    "structure names that no reference matches");
  m.def(
      "evaluate_contours",
      [](const std::string& pred, const std::string& ref,
         const std::vector<std::string>& structures, double tol, py::object progress) {
        core::Progress prog(wrap_progress(progress), "evaluate");
        py::gil_scoped_release nogil;
        return evaluate_contours(pred, ref, structures, tol, prog);
      },
      py::arg("pred_dir"), py::arg("ref_dir"), py::arg("structures") = std::vector<std::string>{},
      py::arg("tolerance_mm") = 4.0, py::arg("progress") = py::none(),
      "evaluate_dirs with its warnings (EvalResult): what `isoline eval contours` prints on stderr "
      "- case folders not scored, predictions resampled from another grid, names that match no "
      "reference. A prediction on a grid that does not overlap its reference, or a file that is "
      "not a 0/1 mask, raises InvalidInput.");
  m.def("summarize", &summarize, py::arg("rows"),
        "Per-structure means and medians over the cases (EvalSummary), in order of first appearance.");
  m.def("dice_plot_svg", &dice_plot_svg, py::arg("rows"), py::arg("title") = "",
        "SVG picture of the Dice of every case per structure (as isoline eval contours --plot): a "
        "dot per case (hover: case and Dice), a flagged reference as a red x, the mean as a bar.");
  m.def(
      "flag_references",
      [](std::vector<EvalRow> rows, const ModelCard& card) {
        flag_references(rows, card);
        return rows;
      },
      py::arg("rows"), py::arg("card"),
      "The rows with ref_flag set where the reference volume is outside the card's usual range.");
  m.def("reference_flag", &reference_flag, py::arg("structure"), py::arg("ref_cc"), py::arg("card"),
        "Why a reference volume (cc) is outside the card's usual range for the structure; '' when "
        "inside or unknown.");
}

}  // namespace isoline::py_bind
